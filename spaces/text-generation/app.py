"""Hugging Face Space: sample from the causal language model in ./model, token by token."""

from pathlib import Path

from llmkit.spaces.templates import space_title
from llmkit.ui.models import build_models_app

HERE = Path(__file__).resolve().parent
demo = build_models_app(causal=str(HERE / "model"), title=space_title(HERE, "Text generation"))

if __name__ == "__main__":
    demo.queue().launch()
