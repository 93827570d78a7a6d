"""Run every classic recipe with its full defaults on this machine and collect quality and time per epoch.

    python benchmarks/bench_classic.py          # CNN first: it becomes the judge of the generative models' samples
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the recipes are importable from the repository root
from recipes import train_cnn, train_diffusion, train_gan, train_mlp, train_rnn, train_vae  # noqa: E402

RECIPES = [("cnn", train_cnn), ("mlp", train_mlp), ("char-lstm", train_rnn), ("gan", train_gan), ("vae", train_vae), ("ddpm", train_diffusion)]


def main() -> None:
    results = {}
    for name, recipe in RECIPES:
        out = Path("runs/bench-classic") / name
        t = time.perf_counter()
        metrics = recipe.main(["--output_dir", str(out), *(["--judge", "runs/bench-classic/cnn"] if name in ("gan", "vae", "ddpm") else [])])
        seconds = time.perf_counter() - t
        if name == "mlp":  # two models: report both accuracies; the time covers both
            metrics = {"numpy_test_accuracy": metrics["numpy"]["test_accuracy"], **metrics["torch"]}
        results[name] = {"seconds": round(seconds, 1), "seconds_per_epoch": round(seconds / metrics["epochs"], 2),
                         **{k: v for k, v in metrics.items() if k != "sample"}}
        print(name, json.dumps(results[name]), flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "classic.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
