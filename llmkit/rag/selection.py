"""Which retrieved sentence answers: meaning, plus the question's words and the kind of answer it asks for.

A sentence embedding measures topic: for "When was the lighthouse completed?" the sentence that
names the lighthouse scores as high as the one that gives the year. Cheap signals break the tie:

- Coverage: the share of the question's content words the sentence contains, each weighted by
  how rare it is among the candidate sentences (a word every candidate shares tells them apart
  not at all). Words of the source's own name or title count as covered by each of its
  sentences: inside a document every sentence is about its subject whether it names it or not
  ("It terminates the nearest enclosing loop" in the page on `break`).
- Answer type: "what is the default ..." wants a sentence stating a default, best with its value
  ("maxsize=128" in a signature counts), "how is X computed" the way
  (using, via, by ...), a "when was/did" question wants a date or year ("when does" a condition: "if ..."), "how many/much/far/long..." a number
  ("how many cover types" best a number counting them: "seven covertypes"), "how often" a
  frequency, "what share/percentage" a proportion, "what exception/error" an exception's name,
  "who" a name; a sentence holding one gets a bonus.
- Condition: "What happens when you delete an unbound name?" is answered by the sentence whose
  "if ..." or "when ..." clause matches the question's ("If the name is unbound, ...").

All of them only order the sentences to quote; the evidence score that decides abstention stays
the cosine similarity.
"""

from __future__ import annotations

import math
import re
from pathlib import PurePosixPath

COVERAGE_WEIGHT = 0.3
ANSWER_TYPE_WEIGHT = 0.2
COUNTED_WEIGHT = 0.1  # on top of the answer type: the number is followed by what the question counts
VALUE_WEIGHT = (
    0.2  # for a question about a default: the sentence states a value ("maxsize=128", "default is False")
)
CONDITION_WEIGHT = 0.15
_QUESTION_WORDS = frozenset(
    "what when where which who whom whose why how much many does did do is are was were".split()
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|hundred|thousand|million"
)
_NUMBER = re.compile(rf"\d|\b({_NUMBER_WORDS}|half|third|quarter|dozen)\b|\bO\([^)]*\)", re.I)  # O(n): a cost
_COUNT = re.compile(rf"(?:\b\d[\d,.]*|\b(?:{_NUMBER_WORDS}))\s+(?:\S+\s+)??([^\W\d_]+)", re.I)
_DATE = re.compile(
    r"\b(1[0-9]{3}|20[0-9]{2})\b|\b(january|february|march|april|may|june|july|august|september|october|november|"
    r"december|century|centuries|decade|year|years|ago|a\.m\.|p\.m\.|morning|evening|before|after|until|during)\b",
    re.I,
)
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]+")  # a capitalised word inside a sentence
_FREQUENCY = re.compile(
    r"\b(once|twice|thrice|never|always|every|each|times|daily|weekly|monthly|yearly|annually|hourly|per)\b",
    re.I,
)
_PROPORTION = re.compile(
    r"\d\s?%|\b(percent|per cent|half|halves|third|thirds|quarter|quarters|fifth|tenth|fraction|ratio)\b",
    re.I,
)
_EXCEPTION = re.compile(r"\b[A-Z]\w*(Error|Exception|Warning|Exit|Interrupt)\b|\bStop\w*Iteration\b")
_DEFAULT = re.compile(r"\bdefault", re.I)
_LITERAL = r"(?:``?[^`\s][^`]*``?|'[^'\s]*'|\"[^\"\s]*\"|[-+]?\.?\d[\w.+-]*|True\b|False\b|None\b)"
_DEFAULT_VALUE = re.compile(  # "default: 'reduced'", "``1e-15`` default", a signature's "maxsize=128"
    rf"\bdefaults?\b(?:\s+(?:value|is|to|was|are))*\s*[:=(]?\s*{_LITERAL}|{_LITERAL}\s+(?:is\s+)?(?:the\s+)?(?:new\s+)?"
    rf"default\b|\b[A-Za-z_]\w*\s?=\s?{_LITERAL}"
)
_METHOD = re.compile(r"\b(using|uses|via|through|by|based on|relies on|implemented)\b", re.I)
_CONDITIONAL = re.compile(r"\b(if|when|whenever|unless|until|only after|only before|as long as)\b", re.I)
_CONDITION = re.compile(r"\b(?:if|when|whenever|unless|once)\b\s+([^,;:]+)", re.I)


def _stem(word: str) -> str:
    """A crude stem: a plural or -ed/-ing ending and a final e dropped, then the first five letters
    (completed/completion, engines/engine, names/named/naming)."""
    for ending, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(ending) and len(word) - len(ending) >= 3 and not word.endswith("ss"):
            word = word[: -len(ending)] + replacement
            break
    return word.rstrip("e")[:5] if len(word) > 3 else word[:5]


def content_stems(text: str) -> set[str]:
    """Stems of the words of `text` that carry meaning (no stopwords, no question words).

    A negated word also counts as its positive ("unbound" as "bound"): the question may say "not bound".
    """
    from llmkit.rag.retrieval import STOPWORDS

    words = re.findall(r"[^\W_]+", text.lower())
    stems = {_stem(w) for w in words if w not in STOPWORDS and w not in _QUESTION_WORDS and len(w) > 1}
    return stems | {_stem(w[2:]) for w in words if w.startswith("un") and len(w) > 5}


def subject_stems(doc_id: str, title: str = "") -> set[str]:
    """Stems of the words naming a source: its file name (without extension) and its title."""
    name = PurePosixPath(doc_id.replace("\\", "/")).name
    name = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", name)
    return content_stems(re.sub(r"[_\-.]+", " ", name) + " " + title)


def expected_type(question: str) -> re.Pattern | None:
    """The pattern of what the question asks for (a number, a date, a name, ...), or None."""
    q = question.lower()
    if re.search(r"\bdefaults?\b|\bby default\b", q):
        return _DEFAULT  # "What is the default mode?": the sentence that states one
    if re.match(
        r"how (is|are|was|were|does|do|did|can)\b.*\b(comput|calculat|determin|implement|estimat|obtain|solv)"
        r"(e|es|ed|ing|s)?\b",  # the verb: "how is the determinant ..." asks about a determinant, not a way
        q,
    ):
        return _METHOD  # "How is the determinant computed?": the way (via, using, by ...), not what it is
    if re.search(r"\bhow often\b|\bhow many times\b", q):
        return _FREQUENCY
    if re.search(r"\bwhat (share|percentage|proportion|fraction|percent)\b", q):
        return _PROPORTION
    if re.search(r"\b(what|which) (\w+ )?(exception|error|warning)s?\b", q):
        return _EXCEPTION
    if re.search(
        r"\bhow (many|much|far|long|fast|hot|cold|old|big|large|tall|deep|heavy)\b|"
        r"\bwhat (temperature|size|number)\b",
        q,
    ):
        return _NUMBER
    if re.match(r"when (does|do|is|are|can|should|will|must|may)\b", q):
        return (
            _CONDITIONAL  # "When does a loop run its else clause?" asks on what condition, not on what date
        )
    if re.search(r"\bwhen\b|\bwhat (year|time|date|day)\b|\bwhich year\b", q):
        return _DATE if not _condition(question) else None
    if re.search(r"\bwho\b|\bwhose\b|\bwhere\b", q):
        return _NAME  # a person, or a place: a capitalised word
    return None


def _counted(question: str) -> set[str]:
    """Stems of the words a "how many ..." question counts ("How many cover types ...": cover, type)."""
    m = re.search(
        r"\bhow many\s+((?:[^\W\d_]+\s+){0,3}?)(?:are|is|were|was|do|does|did|have|has|can|in|of)\b",
        question.lower(),
    )
    return content_stems(m.group(1)) if m else set()


def _condition(question: str) -> set[str]:
    """Content stems of the question's own condition ("... when no exception is active?"), if it has one
    after its first word (a leading "When" asks for a time)."""
    m = _CONDITION.search(question, 1) if question else None
    return content_stems(m.group(1)) if m else set()


def _condition_match(condition: set[str], sentence: str) -> float:
    """The share of the question's condition that one of the sentence's own if/when clauses states."""
    if not condition:
        return 0.0
    clauses = [content_stems(m.group(1)) for m in _CONDITION.finditer(sentence)]
    return max((len(condition & c) / len(condition) for c in clauses), default=0.0)


def _counts_it(counted: set[str], sentence: str) -> bool:
    """Whether a number in the sentence is followed (within a word) by what the question counts."""
    return bool(counted) and any(
        _stem(m.group(1).lower()) in counted or any(c and m.group(1).lower().startswith(c) for c in counted)
        for m in _COUNT.finditer(sentence)
    )


def selection_bonus(
    question: str, sentences: list[str], *, subjects: list[set[str]] | None = None
) -> list[float]:
    """Per sentence: COVERAGE_WEIGHT x its idf-weighted coverage of the question, plus the answer-type,
    counted-thing and condition bonuses. `subjects`: per sentence, the stems naming its source (covered)."""
    wanted = content_stems(question)
    stems = [content_stems(s) for s in sentences]
    n = len(sentences)
    idf = {w: math.log(1 + n / (1 + sum(w in s for s in stems))) for w in wanted}
    total = sum(idf.values()) or 1.0
    kind, counted, condition = expected_type(question), _counted(question), _condition(question)
    out = []
    for i, (s, text) in enumerate(zip(stems, sentences)):
        covered = wanted & (s | (subjects[i] if subjects else set()))
        typed = kind is not None and kind.search(text)
        out.append(
            COVERAGE_WEIGHT * sum(idf[w] for w in covered) / total
            + (ANSWER_TYPE_WEIGHT if typed else 0.0)
            + (COUNTED_WEIGHT if typed and kind is _NUMBER and _counts_it(counted, text) else 0.0)
            + (VALUE_WEIGHT if kind is _DEFAULT and _DEFAULT_VALUE.search(text) else 0.0)
            + CONDITION_WEIGHT * _condition_match(condition, text)
        )
    return out
