"""Hugging Face Space: the extractive question-answering model in ./model (a `llmkit finetune-qa` output)."""

from pathlib import Path

from llmkit.spaces.templates import space_title
from llmkit.ui.models import build_models_app

HERE = Path(__file__).resolve().parent
demo = build_models_app(qa=str(HERE / "model"), title=space_title(HERE, "Question answering"))

if __name__ == "__main__":
    demo.queue().launch()
