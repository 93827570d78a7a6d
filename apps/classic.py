"""The classic baselines, to play with: opens every default recipe output that exists.

`llmkit app classic` (or `python apps/classic.py` in a clone) looks for runs/cnn, runs/gan, runs/vae,
runs/ddpm, runs/char-lstm, runs/dbn, runs/word2vec and a pretraining run's hp_search/; the MLP playground
needs none."""

import argparse
from pathlib import Path

from llmkit.arguments import port_number
from llmkit.errors import run_cli

DEFAULTS = {
    "cnn": "runs/cnn",
    "gan": "runs/gan",
    "vae": "runs/vae",
    "diffusion": "runs/ddpm",
    "char_rnn": "runs/char-lstm",
    "dbn": "runs/dbn",
    "word2vec": "runs/word2vec",
    "hp_search": "runs/gpt2-tiny/hp_search",
}


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    for name in DEFAULTS:
        parser.add_argument(
            f"--{name}", help=f"output_dir of the recipe (default {DEFAULTS[name]} if it exists)"
        )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port_number, default=7862, help="0: a free port from 7860 up")
    args = parser.parse_args(argv)
    marker = {"hp_search": "trials.json"}  # the file that shows a default folder holds a finished run
    folders = {
        k: getattr(args, k) or (v if (Path(v) / marker.get(k, "config.json")).is_file() else None)
        for k, v in DEFAULTS.items()
    }

    from llmkit.ui.classic import build_classic_app
    from llmkit.ui.launch import launch_app

    launch_app(build_classic_app(**folders), args.host, args.port or None)


if __name__ == "__main__":
    run_cli(main)
