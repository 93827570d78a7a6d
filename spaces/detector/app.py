"""Hugging Face Space: an object detector in ./model on uploaded or example images (the model playground's image page)."""

from pathlib import Path

from llmkit.spaces.templates import space_title
from llmkit.ui.models import build_models_app

HERE = Path(__file__).resolve().parent
demo = build_models_app(images=[str(HERE / "model")], title=space_title(HERE, "Object detector"))

if __name__ == "__main__":
    demo.queue().launch()
