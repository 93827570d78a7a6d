"""Play with the models the recipes produce: text generation, classification, tagging, question answering,
seq2seq and image models.

`llmkit app models --causal runs/gpt2-tiny --image runs/finetune-image` (or `python apps/models.py ...` in a clone).

With no arguments it opens every default output folder that exists (runs/gpt2-tiny, runs/finetune,
runs/finetune-qa or runs/qa-reader, runs/finetune-t5, and the image recipes' runs/finetune-image, -detection and
-segmentation, tiny configs too), each on the tab its model serves.
"""

import argparse
from pathlib import Path

from llmkit.arguments import port_number
from llmkit.errors import UserError, run_cli
from llmkit.ui.checks import HEADS, check_head, check_model_folder, serving_flag

# The recipes' default output folders; each one found opens on the tab its model serves (finetune-bert's
# runs/finetune is a text classifier or a tagger).
TEXT_DEFAULTS = ["runs/gpt2-tiny", "runs/finetune", "runs/finetune-qa", "runs/qa-reader", "runs/finetune-t5"]
IMAGE_DEFAULTS = [
    f"runs/finetune-{task}{tiny}" for task in ("image", "detection", "segmentation") for tiny in ("", "-tiny")
]


def parse_args(argv: list[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    """The app's flags: a model folder per kind of tab, host and port."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--causal", help="a causal LM folder (pretrain_gpt2.py / finetune_gpt2.py output)")
    parser.add_argument("--classifier", help="a sequence classifier folder (finetune_bert.py output)")
    parser.add_argument("--tagger", help="a token classifier folder (finetune-bert --task token output)")
    parser.add_argument("--qa", help="an extractive question-answering folder (finetune-qa output)")
    parser.add_argument("--text2text", help="a seq2seq folder (finetune_t5.py output)")
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        help="an image classifier, detector or segmenter folder (finetune-image / -detection / -segmentation "
        "output); repeat for several",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port_number, default=7861, help="0: a free port from 7860 up")
    return parser.parse_args(argv)


def check_folders(args: argparse.Namespace) -> None:
    """UserError naming a folder that holds no finished model, or a model of another kind than its flag serves."""
    for folder in [args.causal, args.classifier, args.tagger, args.qa, args.text2text, *args.image]:
        if folder:
            check_model_folder(folder)
    for flag in HEADS:
        if getattr(args, flag[2:]):
            check_head(getattr(args, flag[2:]), flag)


def _any_folder(args: argparse.Namespace) -> bool:
    return any((args.causal, args.classifier, args.tagger, args.qa, args.text2text, args.image))


def open_defaults(args: argparse.Namespace) -> None:
    """Fill the flags with the recipes' default output folders that exist, each under the flag that serves it."""
    for folder in (d for d in TEXT_DEFAULTS if (Path(d) / "config.json").is_file()):
        flag = serving_flag(folder)
        if flag and flag != "--image" and not getattr(args, flag[2:]):
            setattr(args, flag[2:], folder)
    args.image = [d for d in IMAGE_DEFAULTS if (Path(d) / "config.json").is_file()]
    if not _any_folder(args):
        raise UserError(
            "no model folders given and none of the recipes' default output folders exist; run a recipe "
            "first (e.g. `llmkit pretrain`) or pass --causal/--classifier/--tagger/--qa/--text2text/--image."
        )


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    args = parse_args(argv, prog)
    if not _any_folder(args):
        open_defaults(args)
    check_folders(args)

    from llmkit.ui.launch import launch_app
    from llmkit.ui.models import build_models_app

    demo = build_models_app(
        args.classifier, args.text2text, args.causal, tagger=args.tagger, qa=args.qa, images=args.image
    )
    launch_app(demo, args.host, args.port or None)


if __name__ == "__main__":
    run_cli(main)
