"""Hugging Face Space: the fine-tuned model in ./model, as a classifier, a tagger or a text-to-text generator."""

from pathlib import Path

from llmkit.spaces.templates import space_title
from llmkit.ui.checks import serving_flag
from llmkit.ui.models import build_models_app

HERE = Path(__file__).resolve().parent
# the models app's tab for this model: --tagger for a token classifier, --text2text for T5, else --classifier
kind = {"--tagger": "tagger", "--text2text": "text2text"}.get(serving_flag(str(HERE / "model")), "classifier")
demo = build_models_app(**{kind: str(HERE / "model")}, title=space_title(HERE, "Text classifier"))

if __name__ == "__main__":
    demo.queue().launch()
