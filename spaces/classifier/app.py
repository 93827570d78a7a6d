"""Hugging Face Space: the fine-tuned model in ./model, as a classifier, a tagger or a text-to-text generator."""

import json
from pathlib import Path

from llmkit.spaces.templates import space_title
from llmkit.ui.models import build_models_app

HERE = Path(__file__).resolve().parent
config = json.loads((HERE / "model" / "config.json").read_text())
architectures = " ".join(config.get("architectures") or [])
if config.get("is_encoder_decoder"):
    kind = "text2text"
elif "ForTokenClassification" in architectures:
    kind = "tagger"
else:
    kind = "classifier"
demo = build_models_app(**{kind: str(HERE / "model")}, title=space_title(HERE, "Text classifier"))

if __name__ == "__main__":
    demo.queue().launch()
