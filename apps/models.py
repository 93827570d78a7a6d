"""Play with the models the recipes produce: `python apps/models.py --causal runs/gpt2-tiny --image runs/finetune-image`.

With no arguments it opens every default output folder that exists (runs/gpt2-tiny, runs/finetune,
runs/finetune-t5, and the image recipes' runs/finetune-image, -detection and -segmentation, tiny configs too).
"""

import argparse
import json
from pathlib import Path

from llmkit.arguments import port_number
from llmkit.errors import UserError, run_cli

DEFAULTS = {
    "causal": ["runs/gpt2-tiny"],
    "classifier": ["runs/finetune"],
    "text2text": ["runs/finetune-t5"],
    "image": [
        f"runs/finetune-{task}{tiny}"
        for task in ("image", "detection", "segmentation")
        for tiny in ("", "-tiny")
    ],
}


def check_model_folder(folder: str) -> None:
    """UserError unless `folder` holds a saved model: naming a missing folder, and a run stopped before its end."""
    path = Path(folder)
    if (path / "config.json").is_file():
        return
    if not path.is_dir():
        raise UserError(
            f"{folder} is not a model folder (there is no such folder); pass a recipe's output_dir."
        )
    from llmkit.checkpoints import checkpoint_problem

    saved = [c for c in path.glob("checkpoint-*") if c.name[11:].isdigit() and checkpoint_problem(c) is None]
    if saved:  # a run killed mid-way: its checkpoints are models too
        newest = max(saved, key=lambda c: int(c.name[11:]))
        raise UserError(
            f"{folder} holds no finished model (no config.json): its run stopped early. Pass its newest "
            f"checkpoint, {newest}, or run the same training command again to finish it."
        )
    raise UserError(f"{folder} is not a model folder (no config.json); pass a recipe's output_dir.")


def check_classifier(folder: str) -> None:
    """UserError when `folder` holds a model trained for something else: its classification head would be random
    (a GPT-2 given as --classifier opened and answered LABEL_0/LABEL_1 at chance)."""
    config = Path(folder) / "config.json"
    try:
        architectures = json.loads(config.read_text()).get("architectures") or []
    except (ValueError, AttributeError) as err:  # a save cut short, or JSON that is not an object
        raise UserError(
            f"{config} is not a model's config ({err}; a save or copy cut short?); copy the folder again, "
            "or pass one of its complete checkpoint-N folders."
        ) from None
    if architectures and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise UserError(
            f"{folder} holds a {', '.join(architectures)}, not a text classifier, so its labels would be "
            "random; pass a finetune_bert.py output as --classifier (a causal LM goes to --causal, a seq2seq "
            "model to --text2text)."
        )


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--causal", help="a causal LM folder (pretrain_gpt2.py / finetune_gpt2.py output)")
    parser.add_argument("--classifier", help="a sequence classifier folder (finetune_bert.py output)")
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
    args = parser.parse_args(argv)
    if not (args.causal or args.classifier or args.text2text or args.image):
        found = {k: [d for d in dirs if (Path(d) / "config.json").is_file()] for k, dirs in DEFAULTS.items()}
        if not any(found.values()):
            raise UserError(
                "no model folders given and none of the recipes' default output folders exist; run a recipe "
                "first (e.g. `make pretrain`) or pass --causal/--classifier/--text2text/--image."
            )
        args.image = found.pop("image")
        vars(args).update({k: dirs[0] for k, dirs in found.items() if dirs})
    for folder in [args.causal, args.classifier, args.text2text, *args.image]:
        if folder:
            check_model_folder(folder)
    if args.classifier:
        check_classifier(args.classifier)

    from llmkit.ui.models import build_models_app

    build_models_app(args.classifier, args.text2text, args.causal, images=args.image).launch(
        server_name=args.host, server_port=args.port or None
    )


if __name__ == "__main__":
    run_cli(main)
