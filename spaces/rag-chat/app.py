"""Hugging Face Space: chat with the documents in ./store (a store built with `llmkit rag index`)."""

from pathlib import Path

from llmkit.rag import RAG, open_store
from llmkit.spaces.templates import space_title
from llmkit.ui.rag_chat import build_rag_chat

HERE = Path(__file__).resolve().parent
demo = build_rag_chat(RAG(open_store(HERE / "store")), title=space_title(HERE, "Chat with the documents"))

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=4).launch()
