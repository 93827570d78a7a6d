"""What the model apps check of a folder before they build a page: that it holds a finished model, and a model
of the kind its tab serves. The Gradio builders take folders these checks passed."""

from __future__ import annotations

import json
from pathlib import Path

from llmkit.errors import UserError


def check_model_folder(folder: str) -> None:
    """UserError unless `folder` holds a saved model: naming a missing folder, and a run stopped before its end."""
    path = Path(folder)
    if (path / "config.json").is_file():
        _check_not_classic(folder)
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
    if (path / "adapter_config.json").is_file():  # was "not a model folder", which hid what it is
        raise UserError(
            f"{folder} holds a LoRA adapter without its model (no config.json); pass the output_dir of the "
            "fine-tuning run it came from (which saves the whole model too), or that run's merged/ folder."
        )
    if (path / "tokenizer_config.json").is_file() or (path / "tokenizer.json").is_file():
        raise UserError(
            f"{folder} holds a tokenizer but no model (no config.json); pass the output_dir of a training run."
        )
    raise UserError(f"{folder} is not a model folder (no config.json); pass a recipe's output_dir.")


def _check_not_classic(folder: str) -> None:
    """UserError when `folder` is a classic recipe's run (its config names an `architecture`, no `model_type`):
    the model apps failed on it with "names no known model_type" or "a model without architectures"."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return  # a cut-short config: named where the folder is loaded
    if isinstance(config, dict) and "architecture" in config and "model_type" not in config:
        raise UserError(
            f"{folder} is a classic baseline ({config['architecture']}), not a transformers model; open it with "
            "`llmkit app classic` (its --cnn, --gan, --vae, --diffusion or --char_rnn flag)."
        )


def _architectures(folder: str) -> list[str]:
    """The `architectures` its config.json names, refusing a config that a save or copy cut short."""
    config = Path(folder) / "config.json"
    try:
        return json.loads(config.read_text()).get("architectures") or []
    except (ValueError, AttributeError) as err:  # a save cut short, or JSON that is not an object
        raise UserError(
            f"{config} is not a model's config ({err}; a save or copy cut short?); copy the folder again, "
            "or pass one of its complete checkpoint-N folders."
        ) from None


# The text tabs whose model needs a trained head of its own: flag -> (architecture suffix, what it is, who makes it).
HEADS = {
    "--classifier": ("ForSequenceClassification", "a text classifier", "a finetune_bert.py output"),
    "--tagger": (
        "ForTokenClassification",
        "a token classifier (tagger)",
        "a `finetune-bert --task token` output",
    ),
    "--qa": (
        "ForQuestionAnswering",
        "an extractive question-answering model",
        "a `llmkit finetune-qa` output",
    ),
}


def _flag_for(architectures: list[str]) -> str | None:
    """The models app's flag that serves a model of these architectures, if one does."""
    names = " ".join(architectures)
    for flag, (suffix, _, _) in HEADS.items():
        if suffix in names:
            return flag
    if "CausalLM" in names or "LMHeadModel" in names:
        return "--causal"
    if "ConditionalGeneration" in names or "Seq2SeqLM" in names:
        return "--text2text"
    if any(s in names for s in ("ImageClassification", "ObjectDetection", "SemanticSegmentation")):
        return "--image"
    return None


def serving_flag(folder: str) -> str | None:
    """The models app's flag that serves the model in `folder` (--causal, --classifier, --qa, ...), if one does."""
    try:
        return _flag_for(_architectures(folder))
    except UserError:  # a config cut short: the flag's own check names it
        return None


def check_head(folder: str, flag: str) -> None:
    """UserError unless `folder` holds the kind of model `flag` serves: another model's head would be random
    (a GPT-2 given as --classifier opened and answered LABEL_0/LABEL_1 at chance)."""
    suffix, what, source = HEADS[flag]
    architectures = _architectures(folder)
    if architectures and any(a.endswith(suffix) for a in architectures):
        return
    if not architectures and flag == "--classifier":  # an older save without architectures: loaded as asked
        return
    right = _flag_for(architectures)
    raise UserError(
        f"{folder} holds a {', '.join(architectures) or 'model without architectures'}, not {what}, so its "
        f"outputs would be random; pass {source} as {flag}"
        + (f" (this model goes to {right})." if right and right != flag else ".")
    )
