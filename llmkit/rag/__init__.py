"""Retrieval-augmented generation: documents -> chunks -> embeddings -> FAISS + SQLite -> cited answers."""

from llmkit.rag.abstain import Gate
from llmkit.rag.chunking import Chunk, chunk_document
from llmkit.rag.documents import Document, builtin_knowledge_base, load_paths
from llmkit.rag.embeddings import DEFAULT_EMBEDDING_MODEL, Embedder
from llmkit.rag.pipeline import RAG, Answer, Citation, check_citations, make_generator, open_store
from llmkit.rag.retrieval import Hit, Retriever
from llmkit.rag.store import Store

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "RAG",
    "Answer",
    "Chunk",
    "Citation",
    "Document",
    "Embedder",
    "Gate",
    "Hit",
    "Retriever",
    "Store",
    "builtin_knowledge_base",
    "check_citations",
    "chunk_document",
    "load_paths",
    "make_generator",
    "open_store",
]
