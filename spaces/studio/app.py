"""Hugging Face Space: one studio with a tab per part: the model in ./model and the documents in ./store."""

from pathlib import Path

import gradio as gr

from llmkit.rag import RAG, open_store
from llmkit.spaces.templates import space_title
from llmkit.ui.models import build_models_app
from llmkit.ui.rag_chat import build_rag_chat

HERE = Path(__file__).resolve().parent
demo = gr.TabbedInterface(
    [build_models_app(causal=str(HERE / "model")), build_rag_chat(RAG(open_store(HERE / "store")))],
    ["Generate", "Chat with documents"],
    title=space_title(HERE, "llmkit studio"),
)

if __name__ == "__main__":
    demo.queue().launch()
