"""The extractive reader RAG's `--reader` uses: `llmkit.finetune.reader.Reader`, here under its RAG name.

It lives with `llmkit finetune-qa`, which trains it, so that a page serving a QA model alone (the question-answering
Space) does not need FAISS and the rest of llmkit.rag.
"""

from llmkit.finetune.reader import Reader, Span

__all__ = ["Reader", "Span"]
