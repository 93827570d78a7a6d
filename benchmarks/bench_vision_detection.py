"""Object detection on the generated digit canvases, offline: what the default config reaches and how long it takes.

    python benchmarks/bench_vision_detection.py          # the tiny config, results/vision-detection.json

The run is the real `llmkit finetune-detection --config recipes/configs/finetune-detection-tiny.yaml` (its main(),
in this process), timed from start to end. Its test scores (COCO mAP, mAP@50, per-class AP, by pycocotools) are on
60 held-out canvases that it neither trains nor selects on; the untrained tiny RT-DETR is scored on the same
canvases through pipeline("object-detection"), as is the trained output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from llmkit.recipes.finetune_detection import main as finetune_detection
from llmkit.vision.detect_eval import score_with_pipeline

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "recipes" / "configs" / "finetune-detection-tiny.yaml"
QUIET = ["--disable_tqdm", "true", "--report_to", "none", "--log_level", "error"]


def untrained_scores(labels: list[str], test_dir: Path, folder: Path) -> dict:
    """The tiny RT-DETR with its random start, saved and scored like the trained one."""
    from transformers import AutoModelForObjectDetection, set_seed

    from llmkit.vision.detect import tiny_detector_config_and_processor

    set_seed(42)
    config, processor = tiny_detector_config_and_processor(labels)
    AutoModelForObjectDetection.from_config(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return score_with_pipeline(folder, test_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--out", default=str(HERE / "results" / "vision-detection.json"))
    parser.add_argument("extra", nargs="*", help="more recipe flags, e.g. --num_train_epochs 30")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-detection-"))
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    metrics = finetune_detection(
        ["--config", args.config, "--output_dir", str(root / "run"), *QUIET, *args.extra]
    )
    seconds = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    test_dir = Path(metrics["test_dir"])  # the generated canvases' test folder, when the config names no data
    trained = score_with_pipeline(root / "run", test_dir)
    before = untrained_scores(metrics["labels"], test_dir, root / "untrained")
    result = {
        "command": f"llmkit finetune-detection --config {Path(args.config).name} {' '.join(args.extra)}".strip(),
        "seconds": round(seconds, 1),
        "train_runtime": metrics.get("train_runtime"),
        "global_step": metrics["global_step"],
        "parameters": metrics["parameters"],
        "load_average_before_after": [round(load_before, 1), round(load_after, 1)],
        "test": {
            k.removeprefix("test_"): v for k, v in metrics.items() if k.startswith(("test_map", "test_ap_"))
        },
        "pipeline_trained": trained,
        "pipeline_untrained": before,
        "pipeline_trained_class_agnostic": score_with_pipeline(root / "run", test_dir, class_agnostic=True),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
