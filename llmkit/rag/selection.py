"""Which retrieved sentence answers: meaning, plus the question's words and the kind of answer it asks for.

A sentence embedding measures topic: for "When was the lighthouse completed?" the sentence that
names the lighthouse scores as high as the one that gives the year. Two cheap signals break the
tie. Coverage: the share of the question's content words the sentence contains, each weighted by
how rare it is among the candidate sentences (a word every candidate shares tells them apart
not at all). Answer type: a "when" question wants a date or year, "how many/much/far/long..." a
number, "who" a name; a sentence holding one gets a bonus. Both only order the sentences to
quote; the evidence score that decides abstention stays the cosine similarity.
"""

from __future__ import annotations

import math
import re

COVERAGE_WEIGHT = 0.3
ANSWER_TYPE_WEIGHT = 0.2
_QUESTION_WORDS = frozenset(
    "what when where which who whom whose why how much many does did do is are was were".split()
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|half|third|quarter)\b",
    re.I,
)
_DATE = re.compile(
    r"\b(1[0-9]{3}|20[0-9]{2})\b|\b(january|february|march|april|may|june|july|august|september|october|november|"
    r"december|century|centuries|decade|year|years|ago|a\.m\.|p\.m\.|morning|evening|before|after|until|during)\b",
    re.I,
)
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]+")  # a capitalised word inside a sentence


def _stem(word: str) -> str:
    """A crude stem: the first five letters (completed/completion, engines/engine)."""
    return word[:5]


def content_stems(text: str) -> set[str]:
    """Stems of the words of `text` that carry meaning (no stopwords, no question words)."""
    from llmkit.rag.retrieval import STOPWORDS

    words = re.findall(r"[^\W_]+", text.lower())
    return {_stem(w) for w in words if w not in STOPWORDS and w not in _QUESTION_WORDS and len(w) > 1}


def expected_type(question: str) -> re.Pattern | None:
    """The pattern of what the question asks for (a number, a date, a name), or None."""
    q = question.lower()
    if re.search(
        r"\bhow (many|much|far|long|fast|hot|cold|old|big|large|tall|deep|often|heavy)\b|"
        r"\bwhat (temperature|percentage|share|proportion|size|number)\b",
        q,
    ):
        return _NUMBER
    if re.search(r"\bwhen\b|\bwhat (year|time|date|day)\b|\bwhich year\b", q):
        return _DATE
    if re.search(r"\bwho\b|\bwhose\b|\bwhere\b", q):
        return _NAME  # a person, or a place: a capitalised word
    return None


def selection_bonus(question: str, sentences: list[str]) -> list[float]:
    """Per sentence: COVERAGE_WEIGHT x its idf-weighted coverage of the question, plus the answer-type bonus."""
    wanted = content_stems(question)
    stems = [content_stems(s) for s in sentences]
    n = len(sentences)
    idf = {w: math.log(1 + n / (1 + sum(w in s for s in stems))) for w in wanted}
    total = sum(idf.values()) or 1.0
    kind = expected_type(question)
    return [
        COVERAGE_WEIGHT * sum(idf[w] for w in wanted & s) / total
        + (ANSWER_TYPE_WEIGHT if kind is not None and kind.search(text) else 0.0)
        for s, text in zip(stems, sentences)
    ]
