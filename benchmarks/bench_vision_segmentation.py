"""Segmentation mean IoU on the generated canvases, and the training time, of the default config on this CPU.

    python benchmarks/bench_vision_segmentation.py          # the tiny config, the untrained baseline, two harder sets

Every run is the real `llmkit finetune-segmentation` (its main(), in this process) with
recipes/configs/finetune-segmentation-tiny.yaml; mean IoU is on the held-out test canvases (a fifth as many as
the training ones) that no run trains or selects on. The untrained row is the same tiny SegFormer, freshly
initialised, scored on those canvases by the recipe's own metric. The harder rows change only the data: smaller
digits (up to 3 per canvas) and all ten digits, to show where the tiny model stops being enough.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from llmkit.recipes.finetune_segmentation import main as finetune_segmentation

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "recipes" / "configs" / "finetune-segmentation-tiny.yaml"
QUIET = ["--disable_tqdm", "true", "--report_to", "none", "--save_total_limit", "1", "--log_level", "error"]
VARIANTS = {
    "default: digits 0, 1, 4, one large digit per canvas": [],
    # one step at learning rate 0 changes no weight (AdamW's decay is scaled by it too)
    "untrained (same model, learning rate 0)": [
        *("--learning_rate", "0", "--max_steps", "1", "--eval_strategy", "no"),
        *("--load_best_model_at_end", "false"),
    ],
    "harder: digits 0, 1, 4, up to 3 smaller digits per canvas": ["--generated_per_canvas", "3"],
    "harder: all ten digits, one per canvas": ["--generated_digits", "0123456789"],
}


def run(argv: list[str]) -> tuple[dict, float]:
    """One finetune-segmentation run: its metrics and its wall time."""
    started = time.perf_counter()
    metrics = finetune_segmentation(["--config", str(CONFIG), *argv, *QUIET])
    return metrics, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only_default", action="store_true", help="run the default config and the baseline")
    parser.add_argument("--out", default=str(HERE / "results" / "vision-segmentation.json"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-segmentation-"))
    rows = []
    for i, (name, flags) in enumerate(VARIANTS.items()):
        if args.only_default and i > 1:
            break
        metrics, seconds = run([*flags, "--output_dir", str(root / str(i))])
        row = {
            "variant": name,
            "test_mean_iou": round(metrics["test_mean_iou"], 4),
            "test_pixel_accuracy": round(metrics["test_pixel_accuracy"], 4),
            "per_class_iou": {
                k: None if v is None else round(v, 3) for k, v in metrics["per_class_iou"].items()
            },
            "steps": metrics["global_step"],
            "train_seconds": round(metrics.get("train_runtime", 0.0), 1),
            "wall_seconds": round(seconds, 1),
            "parameters": metrics["parameters"],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
