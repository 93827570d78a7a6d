"""Run every classic recipe with its full defaults on this machine and collect quality and time per epoch.

python benchmarks/bench_classic.py                 # CNN first: it becomes the judge of the generative models' samples
python benchmarks/bench_classic.py --only cnn mlp  # re-measure some rows (the others keep their recorded figures)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the recipes are importable from the repository root
from llmkit.recipes import train_cnn, train_diffusion, train_gan, train_mlp, train_rnn, train_vae  # noqa: E402

RECIPES = {
    "cnn": train_cnn,
    "mlp": train_mlp,
    "char-lstm": train_rnn,
    "gan": train_gan,
    "vae": train_vae,
    "ddpm": train_diffusion,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    only = parser.parse_args().only
    path = HERE / "results" / "classic.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for name in only:
        out = Path("runs/bench-classic") / name
        judge = ["--judge", "runs/bench-classic/cnn"] if name in ("gan", "vae", "ddpm") else []
        shutil.rmtree(out, ignore_errors=True)  # from scratch: an earlier run's checkpoints would be resumed
        t = time.perf_counter()
        metrics = RECIPES[name].main(["--output_dir", str(out), *judge])  # full defaults
        seconds = time.perf_counter() - t
        results[name] = {
            "seconds": round(seconds, 1),
            "seconds_per_epoch": round(seconds / metrics["epoch"], 2),
            **{k: v for k, v in metrics.items() if k not in ("log_history", "numpy_loss_per_epoch")},
        }
        print(name, json.dumps(results[name]), flush=True)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
