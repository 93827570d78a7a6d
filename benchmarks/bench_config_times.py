"""Time each run config in recipes/configs/ the way a user runs it: `llmkit NAME --config FILE`, the whole command.

python benchmarks/bench_config_times.py                       # every config this machine can run offline
python benchmarks/bench_config_times.py --only train-cnn train-mlp

Runs in a fresh working folder, in the README's order (the CNN first: the generative recipes' configs
use runs/cnn as their judge), and records wall-clock seconds, the load average around each run and
the machine. The configs' "Takes:" lines quote these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "recipes" / "configs"
# offline-runnable configs, in an order where each finds what it needs (runs/cnn, runs/gpt2-tiny)
ORDER = [
    "train-cnn",
    "train-mlp",
    "train-rnn",
    "train-gan",
    "train-vae",
    "train-diffusion",
    "train-dbn",
    "train-word2vec",
    "pretrain-tiny",
    "finetune-gpt2-tiny",
    "finetune-qa",
]


def run(name: str, work: Path) -> dict:
    """One config as a command, from start to exit."""
    # each config opens with "# llmkit NAME --config"
    command = (CONFIGS / f"{name}.yaml").read_text().split()[2]
    argv = [sys.executable, "-m", "llmkit.cli", command, "--config", str(CONFIGS / f"{name}.yaml")]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=work, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    return {
        "command": " ".join(["llmkit", command, "--config", f"recipes/configs/{name}.yaml"]),
        "exit": done.returncode,
        "seconds": round(seconds, 1),
        "load_average_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "error": done.stderr[-500:] if done.returncode else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=ORDER, default=ORDER)
    parser.add_argument("--out", default=str(HERE / "results" / "config-times.json"))
    args = parser.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as work:
        for name in [n for n in ORDER if n in args.only]:
            results[name] = run(name, Path(work))
            print(name, results[name], flush=True)
            out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
