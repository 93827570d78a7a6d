"""The RAG pipeline: question -> retrieval -> numbered sources -> streamed, citation-checked answer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from llmkit.errors import UserError
from llmkit.rag.documents import builtin_knowledge_base
from llmkit.rag.embeddings import DEFAULT_EMBEDDING_MODEL, Embedder
from llmkit.rag.generators import ExtractiveGenerator, OpenAIGenerator, TransformersGenerator
from llmkit.rag.retrieval import Hit, Retriever
from llmkit.rag.store import Store

MAX_QUESTION_CHARS = 2000
_CITATION = re.compile(r"\[(\d+)\]")


@dataclass
class Answer:
    """An answer, the sources it was given, and which of them it cites."""

    question: str
    text: str
    sources: list[Hit] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)


def check_citations(text: str, n_sources: int) -> tuple[str, list[int], list[int]]:
    """Strip citations of sources that were not retrieved; return (text, cited ids, invalid ids)."""
    found = [int(m) for m in _CITATION.findall(text)]
    invalid = sorted({n for n in found if not 1 <= n <= n_sources})
    cleaned = _CITATION.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= n_sources else "", text)
    return cleaned, sorted({n for n in found if 1 <= n <= n_sources}), invalid


def check_question(question: str) -> str | None:
    """A reply for a question that cannot be answered as given, or None when it is fine."""
    if not question or not question.strip():
        return "Please type a question."
    if len(question) > MAX_QUESTION_CHARS:
        return f"That question is {len(question):,} characters long; please keep it under {MAX_QUESTION_CHARS:,}."
    return None


def make_generator(kind: str, embedder: Embedder, model: str | None = None, base_url: str | None = None):
    """Build a generator: 'extractive', 'transformers' (needs model) or 'openai' (needs base_url and model)."""
    if kind == "extractive":
        return ExtractiveGenerator(embedder)
    if kind == "transformers":
        if not model:
            raise UserError("--generator transformers needs --generator_model (a model folder or Hub name).")
        return TransformersGenerator(model)
    if kind == "openai":
        if not (base_url and model):
            raise UserError("--generator openai needs --base_url (e.g. http://localhost:8000/v1) and --generator_model.")
        return OpenAIGenerator(base_url, model)
    raise UserError(f"unknown generator {kind!r}; choose extractive, transformers or openai.")


class RAG:
    """Retrieve, then generate; `stream` yields the growing answer, `ask` returns the final Answer."""

    def __init__(self, store: Store, generator=None, k: int = 5, mode: str = "hybrid", reranker: str | None = None):
        self.store = store
        self.retriever = Retriever(store, reranker)
        self.generator = generator or ExtractiveGenerator(store.embedder)
        self.k, self.mode = k, mode

    def stream(self, question: str, k: int | None = None, mode: str | None = None, **filters) -> Iterator[tuple[str, Answer]]:
        """Yield (answer text so far, Answer) as the generator produces it; the last Answer is final."""
        refusal = check_question(question)
        if refusal:
            yield refusal, Answer(question, refusal)
            return
        hits = self.retriever.search(question, k or self.k, mode or self.mode, **filters)
        answer = Answer(question, "", hits)
        for piece in self.generator.stream(question, hits):
            answer.text += piece
            yield answer.text, answer
        answer.text, answer.cited, answer.invalid_citations = check_citations(answer.text.strip(), len(hits))
        yield answer.text, answer

    def ask(self, question: str, **kwargs) -> Answer:
        """Answer a question (non-streaming)."""
        *_, (_, answer) = self.stream(question, **kwargs)
        return answer


def open_store(path: str | Path, embedding_model: str | None = None, builtin: bool = False, progress: bool = True) -> Store:
    """Open a store; with builtin=True, create it from the built-in knowledge base when empty."""
    store = Store(path, embedding_model=embedding_model or DEFAULT_EMBEDDING_MODEL)
    if builtin and len(store) == 0:
        print(f"building the built-in knowledge base (CPython's documentation) in {path}; this happens once...")
        store.add_documents(builtin_knowledge_base(), progress=progress)
    return store
