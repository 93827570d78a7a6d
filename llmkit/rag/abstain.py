"""Evidence and abstention: score the retrieved sentences against the question, and decide whether to answer.

The same gate stands in front of every generator. Its evidence score is the mean of two
cosine similarities to the question: the best retrieved chunk's and the best retrieved
sentence's (a whole chunk can be loosely on topic while one sentence answers exactly). The
absolute threshold is per retrieval mode, because each mode retrieves different chunks; the
relative threshold keeps, among the retrieved sources, only those whose similarity is close to
the best one, so an answer never cites a stray source. By default the absolute threshold is the
store's own, fitted when it was indexed (llmkit.rag.calibration); MIN_SCORE is the fallback for a
store never calibrated. A question with no word that occurs in the store or that the embedding
model knows whole ("asdf qwer", "%_%") is refused whatever its score (RAG._nonsense): a dense
embedding always finds some nearest chunk.

A cosine measures topic, so a question about another library of the same kind ("How do I clear
the cache of lru_cache?" asked of a store of the language reference) finds on-topic evidence.
Its words tell it apart: the gate also asks how much of the question the best retrieved chunk
holds, each of the question's words weighted by its rarity in the store (idf over the store's
chunks, from its FTS5 index). A distinctive term of the question (an identifier such as
`token_hex` or `numpy.linalg`, a capitalised name, a word the embedding model does not know
whole) that occurs nowhere in the store, nor names one of its documents, makes the question
about something else: the gate abstains. A plain word the store never uses is left out, so a
paraphrase ("Why does the sea rise?" of a store that says "tides") is not punished. When the
best of the first three chunks holds less than SUPPORT of that weight, the gate abstains too,
whatever the cosine says.
"""

from __future__ import annotations

import math
import re
import weakref
from dataclasses import dataclass, field

import numpy as np

from llmkit.errors import UserError
from llmkit.rag.chunking import in_context
from llmkit.rag.retrieval import MODES, STOPWORDS, Hit
from llmkit.rag.selection import content_stems, selection_bonus, subject_stems
from llmkit.sentences import answer_units, headings, is_quotable, unit_text

# Calibrated with `python benchmarks/bench_rag.py` (MiniLM-L6): the largest threshold that answers
# at least 95% of the answerable questions, per mode.
MIN_SCORE = {"dense": 0.35, "lexical": 0.35, "hybrid": 0.35}
RELATIVE = 0.6  # a source is kept as evidence if its similarity is at least this share of the best one's
MAX_SENTENCES = 40  # sentences embedded per question: bounds the latency of long chunks
MAX_EXTRA_UNITS = 15  # ... and units beyond them that do not count as evidence (quoted passages, announcers)
ABSTAIN_TEXT = "The documents do not seem to contain the answer to that question."
# The least share of the question's (idf-weighted) terms the best retrieved chunk must hold. Fitted on the
# five tuning collections of benchmarks/rag_collections.py (their least in-collection share is 0.41).
SUPPORT = 0.35
SUPPORT_CHUNKS = 3  # the answer may sit in the second or third chunk retrieved, rarely further
_IDENTIFIER = re.compile(
    r"\b(?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*"  # dotted: numpy.linalg, shutil.copy
    r"|\b\w*_\w+"  # snake_case: token_hex
    r"|\b[a-z]+[A-Z]\w*|\b[A-Z][a-z]+[A-Z]\w*"  # camelCase, CamelCase: SequenceMatcher
    r"|\b[A-Za-z]+\d\w*"  # letters then digits: h11, utf8
    r"|\b[A-Z]{2,}\b"  # acronyms: POSIX, JSON
)
_WORD = re.compile(r"[^\W\d_][\w'-]*")
_ASKING = frozenset(
    "what when where which who whom whose why how much many does did do is are was were".split()
)


@dataclass
class Sentence:
    """One sentence of a retrieved source, scored against the question."""

    n: int  # the source's number (1-based) in the answer's source list
    text: str
    start: int  # offsets in the source chunk's text, for highlighting in context
    end: int
    score: float  # cosine similarity to the question: the evidence
    rank: float = 0.0  # score plus the answer-bearing bonus (llmkit.rag.selection): the order of quoting
    evidence: bool = True  # whether its score counts towards the evidence (a sentence of sentence_spans)


@dataclass
class Evidence:
    """What the retrieved sources say about a question: ranked sentences and the gate's verdict."""

    sentences: list[Sentence] = field(default_factory=list)  # most likely to hold the answer first
    chunk_score: float = 0.0
    support: float = 1.0  # the share of the question the best chunk holds (see the module docstring)
    foreign: list[str] = field(default_factory=list)  # the question's distinctive terms the store never uses
    score: float = 0.0
    threshold: float = 0.0
    abstain: bool = True
    kept: list[int] = field(default_factory=list)  # numbers of the sources close enough to the best one

    def best_sentence(self, n: int) -> Sentence | None:
        """The sentence of source n most likely to hold the answer (the first in quoting order)."""
        return next((s for s in self.sentences if s.n == n), None)


@dataclass
class Gate:
    """Abstention thresholds: an absolute evidence floor per mode and a relative floor for sources."""

    min_score: dict | float | None = None  # None: the store's calibrated thresholds (see for_store)
    relative: float = RELATIVE
    support: float = SUPPORT  # 0: the cosine evidence alone decides

    def __post_init__(self):
        if self.min_score is None:
            return self._check_relative()
        if isinstance(self.min_score, (int, float)):
            self.min_score = dict.fromkeys(MODES, float(self.min_score))
        for mode, value in self.min_score.items():
            if mode not in MODES or not -1.0 <= value <= 1.0:
                raise UserError(
                    f"abstention threshold {mode}={value} is invalid: use a mode of {MODES} and a value in [-1, 1]."
                )
        self._check_relative()

    def _check_relative(self) -> None:
        if not 0.0 <= self.relative <= 1.0:
            raise UserError(
                f"the relative threshold must be in [0, 1], got {self.relative}; e.g. {RELATIVE}."
            )

    def for_store(self, store) -> Gate:
        """This gate with its thresholds settled: given ones, else the store's calibrated ones, else MIN_SCORE."""
        if self.min_score is not None:
            return self
        from llmkit.rag.calibration import store_thresholds

        return Gate({**MIN_SCORE, **(store_thresholds(store) or {})}, self.relative, self.support)

    def describe(self, mode: str) -> str:
        """One line for a settings panel."""
        if self.min_score is None:
            return f"abstains below the store's calibrated evidence ({mode}); cites sources within {self.relative:.0%} of the best"
        return (
            f"abstains below evidence {self.min_score[mode]:.2f} ({mode}); cites sources within "
            f"{self.relative:.0%} of the best"
        )

    def evaluate(
        self,
        embedder,
        question_vector: np.ndarray,
        hits: list[Hit],
        mode: str,
        *,
        question: str = "",
        store=None,
    ) -> Evidence:
        """Score the hits' sentences against the question and decide whether to answer.

        With the question's text, sentences are ordered by how likely they hold the answer
        (llmkit.rag.selection); the evidence score uses the cosine similarities alone. With the
        store too, a question the best chunk holds too little of (support) is refused as well,
        unless the gate is wide open (an absolute threshold of -1).
        """
        evidence = Evidence(threshold=(self.min_score or MIN_SCORE)[mode])
        if not hits:
            return evidence
        best = max(h.similarity for h in hits)
        close = [n for n, h in enumerate(hits, start=1) if h.similarity >= self.relative * best]
        evidence.chunk_score = best
        # the close sources first, so their sentences (the evidence) are the same whatever else is read
        numbers = close + [n for n in range(1, len(hits) + 1) if n not in close]
        ranked = rank_sentences(embedder, question_vector, hits, numbers, question=question)
        top_sentence = max((s.score for s in ranked if s.evidence and s.n in close), default=0.0)
        # a source is kept when its chunk is close to the best one, or one of its sentences is close to the best
        # sentence: a long chunk can be mostly about something else and still hold the answer in one line
        evidence.kept = sorted(
            set(close) | {s.n for s in ranked if s.evidence and s.score >= self.relative * top_sentence}
        )
        evidence.sentences = [s for s in ranked if s.n in evidence.kept]
        evidence.score = (best + top_sentence) / 2
        evidence.abstain = evidence.score < evidence.threshold
        if store is not None and question and self.support > 0 and evidence.threshold > -1:
            evidence.support, evidence.foreign = lexical_support(store, question, hits)
            evidence.abstain = evidence.abstain or evidence.support < self.support or bool(evidence.foreign)
        return evidence


# store -> (generation, stems, vocab, number of documents)
_SUBJECTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _store_words(store) -> tuple[set[str], dict, int]:
    """Stems naming the store's documents (file names, titles: a module's page need not spell its name),
    the embedding model's vocabulary, and the number of documents."""
    generation, stems, vocab, documents = _SUBJECTS.get(store, (None, set(), {}, 0))
    if generation != store.loaded_generation:
        titles = store.document_titles()
        stems = set().union(set(), *(subject_stems(i, t) for i, t in titles.items()))
        vocab, documents = store.embedder.tokenizer.get_vocab(), len(titles)
        _SUBJECTS[store] = (store.loaded_generation, stems, vocab, documents)
    return stems, vocab, documents


def question_terms(question: str, vocab) -> list[tuple[list[str], set[str], bool]]:
    """The question's terms as (FTS5 expressions to look it up by, stems, distinctive): identifiers whole
    (a dotted name part by part), other words alone; `vocab`: the embedding model's whole words."""
    terms, taken = [], []
    for m in _IDENTIFIER.finditer(question):
        taken.append(m.span())
        parts = m.group(0).split(".") if "." in m.group(0) else [m.group(0)]
        for part in parts:  # shutil.copy: a module's page need not spell "shutil.copy" whole
            words = re.findall(r"[^\W_]+", part.lower())
            if words:
                terms.append(([f'"{" ".join(words)}"'], content_stems(part.replace("_", " ")), True))
    for i, m in enumerate(_WORD.finditer(question)):
        word = re.sub(r"['’]s$", "", m.group(0))  # IDLE's: IDLE
        low, before = word.lower(), question[: m.start()].lower()
        if (
            any(a <= m.start() < b for a, b in taken)
            or low in STOPWORDS
            or low in _ASKING
            or re.search(r"['’]", low)  # don't, I've: function words
            or re.search(r"\bhow\s+$", before)  # how long, how often: what kind of answer, not what about
        ):
            continue
        stems = content_stems(low)
        if not stems:
            continue
        parts = [p for p in low.split("-") if p]  # command-line: two everyday words, looked up together
        named = i > 0 and word[0].isupper()  # a name inside the question, not its first word
        # the embedding model splits it: not everyday English
        rare = any(len(p) >= 4 and p not in vocab for p in parts)
        stem = min(stems, key=len)
        # a distinctive word by its stem too: "Europeans" of a text that says "Europe", "bake" of "baker's"
        lookups = [f'"{" ".join(parts)}"'] + ([f'"{stem}"*'] if (named or rare) and len(stem) >= 3 else [])
        terms.append((lookups, stems, named or rare))
    return terms


def lexical_support(store, question: str, hits: list[Hit]) -> tuple[float, list[str]]:
    """(support, foreign): the largest idf-weighted share of the question's terms that one of the first
    SUPPORT_CHUNKS hits holds (1.0: no term to weigh), and the question's distinctive terms the store lacks.

    A plain word the store never uses is left out; a distinctive one counts, as missing with the largest weight.
    """
    subjects, vocab, documents = _store_words(store)
    n = max(len(store), 1)
    held = [
        content_stems(h.text) | subject_stems(h.doc_id, h.metadata.get("title", ""))
        for h in hits[:SUPPORT_CHUNKS]
    ]
    weights, foreign = [], []
    for lookups, stems, distinctive in question_terms(question, vocab):
        df = 0
        for expression in lookups:
            df = df or store.chunk_frequency(expression)
        if not df and stems <= subjects:  # names a document without being spelled in it: as common as one
            df = max(n // max(documents, 1), 1)
        if df == 0 and distinctive:
            foreign.append(lookups[0].strip('"'))
        if df or distinctive:  # a plain word the documents never use: perhaps a paraphrase, no evidence
            weights.append((math.log((n + 1) / (df + 0.5)), stems))
    total = sum(w for w, _ in weights)
    if not total:
        return 1.0, foreign
    return max(sum(w for w, stems in weights if stems <= h) / total for h in held or [set()]), foreign


def rank_sentences(
    embedder, question_vector: np.ndarray, hits: list[Hit], numbers: list[int], *, question: str = ""
) -> list[Sentence]:
    """The quotable units of the given sources (llmkit.sentences.answer_units), scored by cosine similarity
    to the question, best first.

    A unit's score is its own sentence's similarity: the evidence, as when sentences were quoted
    alone. Its rank is the similarity of the whole unit placed in its document (in_context: a
    sentence that says "It returns ..." under the heading "pinv" is about pinv), plus, given the
    question's text, the answer-bearing bonus of llmkit.rag.selection computed on the whole unit.
    """
    seen, found, cores, extra = set(), [], [], 0
    for n in numbers:
        text = hits[n - 1].text
        for unit in answer_units(text):
            core = " ".join(text[unit.core[0] : unit.core[1]].split())
            counts = unit.kind != "quote" and is_quotable(core)
            if core.lower() in seen or not (
                counts or is_quotable(core, with_what_follows=unit.kind in ("code", "list"))
            ):
                continue  # overlapping chunks repeat sentences
            if not counts and extra == MAX_EXTRA_UNITS or counts and len(found) - extra == MAX_SENTENCES:
                continue
            seen.add(core.lower())
            extra += not counts
            found.append(Sentence(n, unit_text(text, unit), unit.start, unit.end, 0.0))
            found[-1].evidence = counts
            cores.append(core)
    if not found:
        return []
    sections = {n: headings(hits[n - 1].text) for n in numbers}
    titles = [next((t for at, t in reversed(sections[s.n]) if at <= s.start), "") for s in found]
    placed = [
        in_context(hits[s.n - 1].doc_id, hits[s.n - 1].metadata, s.text, title)
        for s, title in zip(found, titles)
    ]
    vectors = embedder.encode(cores + placed) @ question_vector
    subjects = [
        subject_stems(hits[s.n - 1].doc_id, hits[s.n - 1].metadata.get("title", "")) | content_stems(title)
        for s, title in zip(found, titles)  # the heading a unit sits under names its subject too
    ]
    bonus = (
        selection_bonus(question, [s.text for s in found], subjects=subjects)
        if question
        else [0.0] * len(found)
    )
    for s, score, placed_score, extra_rank in zip(found, vectors, vectors[len(cores) :], bonus):
        s.score = float(score)
        s.rank = float(placed_score) + extra_rank
    return sorted(found, key=lambda s: (-s.rank, s.n))


def calibrate(answerable: list[float], unanswerable: list[float], answer_rate: float = 0.95) -> float:
    """The threshold that abstains on most unanswerable questions while answering `answer_rate` of the others.

    Candidates are the midpoints between neighbouring evidence scores; among those that answer
    enough answerable questions, the one with the best balanced accuracy wins, and of equals the
    one farthest from any question's score (the most robust).
    """
    if not answerable:
        raise ValueError("calibration needs answerable questions")
    a, u = np.asarray(answerable, float), np.asarray(unanswerable, float)
    points = np.unique(np.concatenate([a, u]))
    candidates = np.concatenate([[points[0] - 1e-3], (points[1:] + points[:-1]) / 2])
    best, best_key = float(candidates[0]), None
    for t in candidates:
        answered = float(np.mean(a >= t))
        if answered < answer_rate:
            continue
        abstained = float(np.mean(u < t)) if len(u) else 0.0
        key = (answered + abstained, float(np.min(np.abs(points - t))))
        if best_key is None or key > best_key:
            best, best_key = float(t), key
    return round(best, 4)
