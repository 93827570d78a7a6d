"""Transfer learning with few labels, offline: pretrain the tiny ResNet on digits 0-4, then learn digits 5-9 from
20 labelled canvases per class, by transfer (full fine-tune, frozen backbone, LoRA) and from scratch.

    python benchmarks/bench_vision_transfer.py                  # 3 seeds, results/vision-transfer.json

Every run is the real `llmkit finetune-image` (its main(), in this process) on generated canvases written as class
folders; accuracy is on 40 held-out canvases per class that no run trains or selects on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from llmkit.recipes.finetune_image import main as finetune_image
from llmkit.vision.synthetic import write_image_folders

HERE = Path(__file__).resolve().parent
QUIET = ["--disable_tqdm", "true", "--report_to", "none", "--save_total_limit", "1", "--log_level", "error"]
# name -> extra flags (the pretrained backbone is added for the transfer variants)
VARIANTS = {
    "from scratch": ["--learning_rate", "3e-3"],
    "transfer: full fine-tune": ["--learning_rate", "1e-3"],
    # a new head alone and LoRA adapters (zero at the start) need a larger step: at 3e-3 LoRA reached 0.44
    "transfer: frozen backbone": ["--freeze_backbone", "true", "--learning_rate", "1e-2"],
    "transfer: LoRA (r=8)": ["--use_lora", "true", "--learning_rate", "1e-2"],
}


def run(argv: list[str]) -> tuple[dict, float]:
    """One finetune-image run: its metrics and its wall time."""
    started = time.perf_counter()
    metrics = finetune_image([*argv, *QUIET])
    return metrics, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--few", type=int, default=20, help="labelled canvases per class for digits 5-9")
    parser.add_argument("--out", default=str(HERE / "results" / "vision-transfer.json"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-vision-"))
    source = write_image_folders(
        root / "source", train_per_class=80, test_per_class=20, digits=range(5), seed=1
    )
    target = write_image_folders(
        root / "target", train_per_class=args.few, test_per_class=40, digits=range(5, 10), seed=2
    )
    backbone = root / "backbone"
    pre, pre_seconds = run(
        [
            *("--train_dir", str(source / "train"), "--test_dir", str(source / "test")),
            "--num_train_epochs",
            "15",
        ]
        + ["--learning_rate", "3e-3", "--output_dir", str(backbone)]
    )
    print(
        f"pretrained on digits 0-4: test accuracy {pre['test_accuracy']:.3f} in {pre_seconds:.0f} s",
        flush=True,
    )
    runs = []
    for seed in range(args.seeds):
        for name, flags in VARIANTS.items():
            start = [] if name == "from scratch" else ["--model_name_or_path", str(backbone)]
            metrics, seconds = run(
                [*start, *flags, "--train_dir", str(target / "train"), "--test_dir", str(target / "test")]
                + ["--num_train_epochs", "30", "--per_device_train_batch_size", "16", "--seed", str(seed)]
                + ["--output_dir", str(root / f"{len(runs)}")]
            )
            runs.append(
                {
                    "variant": name,
                    "seed": seed,
                    "test_accuracy": metrics["test_accuracy"],
                    "test_macro_f1": metrics["test_macro_f1"],
                    "trainable_parameters": metrics["trainable_parameters"],
                    "seconds": round(seconds, 1),
                }
            )
            print(runs[-1], flush=True)
    summary = {
        name: {
            "test_accuracy_mean": round(statistics.mean(r["test_accuracy"] for r in rows), 3),
            "test_accuracy_min": min(r["test_accuracy"] for r in rows),
            "test_accuracy_max": max(r["test_accuracy"] for r in rows),
            "seconds_mean": round(statistics.mean(r["seconds"] for r in rows), 1),
            "trainable_parameters": rows[0]["trainable_parameters"],
        }
        for name in VARIANTS
        for rows in [[r for r in runs if r["variant"] == name]]
    }
    result = {
        "pretraining": {"test_accuracy": pre["test_accuracy"], "seconds": round(pre_seconds, 1)},
        "labelled_per_class": args.few,
        "summary": summary,
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for name, row in summary.items():
        print(f"{name:28s} {row}")


if __name__ == "__main__":
    main()
