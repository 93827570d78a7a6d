"""The RAG pipeline: question -> retrieval -> numbered sources -> streamed, citation-checked answer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from llmkit.errors import UserError
from llmkit.rag.abstain import ABSTAIN_TEXT, Evidence, Gate, Sentence
from llmkit.rag.calibration import ensure_calibrated
from llmkit.rag.documents import builtin_knowledge_base
from llmkit.rag.embeddings import Embedder
from llmkit.rag.generators import ExtractiveGenerator, OpenAIGenerator, TransformersGenerator, as_quoted
from llmkit.rag.retrieval import STOPWORDS, Hit, Retriever
from llmkit.rag.serve import MAX_QUESTION_CHARS  # one limit: the pipeline, `rag ask`, the API
from llmkit.rag.store import Store
from llmkit.sentences import is_text

_CITATION = re.compile(r"\[(\d+)\]")
BUILTIN_DONE = (
    "builtin_complete"  # manifest key: the built-in docs were all added (a build may be stopped midway)
)


@dataclass
class Citation:
    """A cited source and the sentence of it that supports the answer."""

    n: int
    hit: Hit
    sentence: str
    start: int  # the sentence's offsets in hit.text (-1 when no sentence of it could be matched)
    end: int
    score: float

    def to_dict(self) -> dict:
        """The JSON shape of `llmkit rag ask --json`."""
        return {
            "n": self.n,
            "doc_id": self.hit.doc_id,
            "source": self.hit.metadata.get("source", self.hit.doc_id),
            "page": self.hit.page,
            "sentence": self.sentence,
            "score": round(self.score, 4),
        }


@dataclass
class Answer:
    """An answer, the sources it was given, which of them it cites, and whether it abstained."""

    question: str
    text: str
    sources: list[Hit] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    evidence: Evidence | None = None
    span: str | None = None  # with a reader: the answer span it read, when it lies in the first cited unit

    def to_dict(self) -> dict:
        """{"answer", "citations", "abstained", "sources"}: the machine-readable answer.

        A source is "relevant" when it was cited or passed the relevance cut (what a reader is shown).
        """
        relevant = set(self.evidence.kept) | set(self.cited) if self.evidence else None
        return {
            "answer": self.text,
            "citations": [c.to_dict() for c in self.citations],
            "abstained": self.abstained,
            "span": self.span,
            "sources": [
                {
                    "n": n,
                    "doc_id": h.doc_id,
                    "source": h.metadata.get("source", h.doc_id),
                    "page": h.page,
                    "title": h.metadata.get("title", ""),
                    "score": round(h.score, 4),
                    "similarity": round(h.similarity, 4),
                    "relevant": relevant is None or n in relevant,
                    "text": h.text,
                }
                for n, h in enumerate(self.sources, start=1)
            ],
        }


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
    # bytes of another encoding, kept by Python as lone surrogates: the tokenizer failed on them
    if not is_text(question):
        return "That question holds bytes that are not UTF-8 text; please type it again as UTF-8."
    return None


def make_generator(kind: str, embedder: Embedder, model: str | None = None, base_url: str | None = None):
    """Build a generator: 'extractive', 'transformers' (needs model) or 'openai' (needs base_url and model)."""
    if kind == "extractive":
        return ExtractiveGenerator()
    if kind == "transformers":
        if not model:
            raise UserError("--generator transformers needs --generator_model (a model folder or Hub name).")
        return TransformersGenerator(model)
    if kind == "openai":
        if not (base_url and model):
            raise UserError(
                "--generator openai needs --base_url (e.g. http://localhost:8000/v1) and --generator_model."
            )
        return OpenAIGenerator(base_url, model)
    raise UserError(f"unknown generator {kind!r}; choose extractive, transformers or openai.")


class RAG:
    """Retrieve, weigh the evidence, then generate; `stream` yields the growing answer, `ask` the final Answer."""

    def __init__(
        self,
        store: Store,
        generator=None,
        k: int = 5,
        mode: str = "hybrid",
        reranker: str | None = None,
        gate: Gate | None = None,
        reader=None,
    ):
        """`reader` (an llmkit.rag.reader.Reader): its "no answer" abstains; the quoted sentence stays the ranker's."""
        if k < 1:
            raise UserError(f"k must be at least 1, got {k}.")
        self.store = store
        self.retriever = Retriever(store, reranker)
        self.generator = generator or ExtractiveGenerator()
        self.requested_gate = gate or Gate()  # thresholds None: the store's calibrated ones
        self.k, self.mode = k, mode
        self.reader = reader

    @property
    def gate(self) -> Gate:
        """The gate in force: the requested one, with the store's calibrated thresholds where none were given."""
        return self.requested_gate.for_store(self.store)

    def stream(
        self, question: str, k: int | None = None, mode: str | None = None, **filters
    ) -> Iterator[tuple[str, Answer]]:
        """Yield (answer text so far, Answer) as the generator produces it; the last Answer is final."""
        refusal = check_question(question)
        if refusal:
            yield refusal, Answer(question, refusal)
            return
        mode = mode or self.mode
        hits, vector = self.retriever.retrieve(question, k or self.k, mode, **filters)
        evidence = self.gate.evaluate(
            self.store.embedder, vector, hits, mode, question=question, store=self.store
        )
        if not evidence.abstain and evidence.threshold > -1 and self._nonsense(question):
            evidence.abstain = True  # a gate at -1 is wide open: only then is nonsense answered
        answer = Answer(question, "", hits, evidence=evidence)
        if self.reader is not None and not evidence.abstain:
            answer.span = _read(self.reader, question, hits, evidence)
        if evidence.abstain:  # the same gate for every generator: no evidence, no generation, no citation
            answer.text, answer.abstained = (
                ABSTAIN_TEXT if hits else "The documents hold nothing about that.",
                True,
            )
            yield answer.text, answer
            return
        kept = [hits[n - 1] for n in evidence.kept]  # generators see only the sources close to the best one
        numbering = dict(enumerate(evidence.kept, start=1))
        for piece in self.generator.stream(question, kept, _renumber(evidence, evidence.kept)):
            answer.text += piece
            yield answer.text, answer
        text, _, answer.invalid_citations = check_citations(answer.text.strip(), len(kept))
        # back to the full source list
        answer.text = _CITATION.sub(lambda m: f"[{numbering[int(m.group(1))]}]", text)
        answer.cited = sorted({int(n) for n in _CITATION.findall(answer.text)})
        answer.citations = _citations(answer, evidence)
        yield answer.text, answer

    def _nonsense(self, question: str) -> bool:
        """No word of the question occurs in the store, nor is any a word the embedding model knows whole.

        "%_%" or "asdf qwer" still has a nearest chunk; "Why does the sea rise?" asked of a store that
        says "tides" shares no word with it either, but its words are words, so the evidence decides.
        """
        words = [w for w in re.findall(r"[^\W_]+", question.lower()) if w not in STOPWORDS]
        if not words:
            return True
        if self.retriever.lexical(question, 1):
            return False
        vocab = self.store.embedder.tokenizer.get_vocab()
        return not any(w in vocab for w in words)

    def ask(self, question: str, **kwargs) -> Answer:
        """Answer a question (non-streaming)."""
        *_, (_, answer) = self.stream(question, **kwargs)
        return answer


def _read(reader, question: str, hits: list[Hit], evidence: Evidence) -> str | None:
    """The reader's verdict over the kept sources: no span anywhere abstains (for every generator). Returns the
    span when it lies in the unit quoted first, else None.

    The quoting order stays the ranker's: measured on eight collections (benchmarks/RESULTS.md), putting the
    sentence of a reader fine-tuned on llmkit's QA set first quoted the answer less often than the ranker did
    on every one of them, prose included; its "no answer" is what it adds.
    """
    found = reader.best(question, [hits[n - 1].text for n in evidence.kept])
    if found is None:
        evidence.abstain = True
        return None
    i, span = found
    first = evidence.sentences[0] if evidence.sentences else None
    inside = first and first.n == evidence.kept[i] and first.start <= span.start < first.end
    return span.text if inside else None


def _renumber(evidence: Evidence, kept: list[int]) -> Evidence:
    """Evidence with its sentences numbered as the generator sees the kept sources (1..len(kept))."""
    new = {n: i for i, n in enumerate(kept, start=1)}
    sentences = [
        Sentence(new[s.n], s.text, s.start, s.end, s.score, s.rank) for s in evidence.sentences if s.n in new
    ]
    return Evidence(
        sentences,
        evidence.chunk_score,
        evidence.score,
        evidence.threshold,
        evidence.abstain,
        list(new.values()),
    )


def _citations(answer: Answer, evidence: Evidence) -> list[Citation]:
    """For each citation in order of appearance, the source sentence that supports it.

    An extractive answer quotes sentences verbatim, so the quoted one is found; for an LLM's
    answer, the cited source's sentence closest to the question is taken.
    """
    out = []
    for n in dict.fromkeys(int(m) for m in _CITATION.findall(answer.text)):
        hit = answer.sources[n - 1]
        quoted = [s for s in evidence.sentences if s.n == n and as_quoted(s.text) in answer.text]
        best = quoted[0] if quoted else evidence.best_sentence(n)
        if best:
            out.append(Citation(n, hit, best.text, best.start, best.end, best.score))
        else:
            out.append(Citation(n, hit, "", -1, -1, hit.similarity))
    return out


def open_store(
    path: str | Path, embedding_model: str | None = None, builtin: bool = False, progress: bool = True
) -> Store:
    """Open a store (with the embedding model its manifest names); with builtin=True, fill an empty one with the
    built-in docs, or finish filling one whose build was interrupted."""
    path = Path(path)
    if not builtin and not (path / "manifest.json").is_file():
        raise UserError(f"no store at {path}; build one with `llmkit rag index PATH --store {path}`.")
    store = Store(path, embedding_model=embedding_model)
    if builtin and not store.config.get(BUILTIN_DONE):
        _build_builtin(store, progress)
    return store


def _build_builtin(store: Store, progress: bool) -> None:
    """Add the built-in docs to an empty store, or the rest of them to one whose build was stopped (Ctrl-C on the
    app's first start left a store of a few hundred documents, served as if whole and never finished)."""
    docs = builtin_knowledge_base()
    held, ids = set(store.document_ids()), {d.id for d in docs}
    if held and not held & ids:
        return  # a store of the user's own documents at the built-in store's path: not ours to fill
    if ids - held:
        verb = "continuing" if held else "building"
        print(
            f"{verb} the built-in knowledge base (CPython's documentation) in {store.path}; this happens once..."
        )
    store.add_documents(docs, progress=progress)  # embeds only the documents missing
    ensure_calibrated(store)
    store.save_manifest_entry(BUILTIN_DONE, True)
