"""The built-in question answering set: passages and questions written for llmkit, and questions made at run time.

- `qa_sample.json` (beside this file, SQuAD v2 layout): 48 short passages on varied topics, each with questions it
  answers (a span) and questions on its topic that it does not answer. Every fourth passage is held out for
  validation, so no validation passage is ever trained on.
- Each training question also comes in two variants: its passage with the answer's sentence removed (now on topic
  but unanswerable, as in a RAG collection), and its passage after an unrelated one (find the passage that answers).
- Questions generated from sentences by rules (`sentence_questions`): numbers, names, definitions, reasons and
  quoted terms become answers, and the rest of the sentence, shortened and thinned, becomes the question. They come
  from the training passages and from CPython's documentation (read at run time, never copied), each with the same
  two unanswerable variants. They teach where answers are; the written questions teach how people ask.
"""

from __future__ import annotations

import json
import random
import re
from functools import cache
from pathlib import Path

from llmkit.data.builtin import builtin_documents
from llmkit.finetune.qa_data import _flatten, check_rows
from llmkit.sentences import is_quotable, sentence_spans

SAMPLE = Path(__file__).with_name("qa_sample.json")
HELD_OUT_EVERY = 4  # passages 4, 8, 12, ... are validation only

# Words a definition's subject cannot start or end with: pronouns, and conjunctions that open a clause ("If x is ...").
_NOT_SUBJECT = set(
    "it this these those they there that which he she we you i its such if when while although unless for in on by "
    "as so because whether where what how all each every some any no one".split()
)
_DEFINITION = re.compile(
    r"^(?P<subj>(?:(?:The|A|An) )?[A-Za-z][\w'-]*(?: [\w'-]+){0,4}?) (?P<verb>is|are|was|were) "
    r"(?P<pred>[^,;:()]{4,90}?)(?=[,;:.(]|$)"
)
_BECAUSE = re.compile(r"^(?P<head>[^,;]{12,120}?),? because (?P<why>[^.;]{6,110})")
_CALLED = re.compile(r"\b(?:called|named|known as) (?P<name>(?:the )?[\w'-]+(?: [\w'-]+){0,3}?)(?=[,;.)]|$)")
_NUMBER = re.compile(
    r"\b(?:(?:about|roughly|around|over|under|up to|more than|less than|nearly|at least) )?"
    r"\d[\d,.]*\d?(?: ?(?:%|percent|per cent)| (?:[a-z]+(?: of [a-z]+)?))?"
)
_NAME = re.compile(r"(?<=[a-z,] )(?:[A-Z][\w'-]+)(?: (?:of |de |the )?[A-Z][\w'-]+){0,3}")
_QUOTED = re.compile(r"\"(?P<q>[^\"]{2,30})\"|(?P<call>\b[A-Za-z_][\w.]*\(\))")


def sample_rows() -> tuple[list[dict], list[dict]]:
    """The written questions: (training rows, held-out rows), split by passage."""
    articles = json.loads(SAMPLE.read_text())["data"]
    train = [a for i, a in enumerate(articles, 1) if i % HELD_OUT_EVERY]
    held = [a for i, a in enumerate(articles, 1) if not i % HELD_OUT_EVERY]
    return (check_rows(_flatten(SAMPLE, train), str(SAMPLE)), check_rows(_flatten(SAMPLE, held), str(SAMPLE)))


def builtin_qa(generated: int = 2000, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, validation): validation is the held-out written questions only; train adds variants and generated ones."""
    train, held = sample_rows()
    rng = random.Random(seed)
    passages = sorted({r["context"] for r in train})
    rows = [*train, *_variants(train, passages, rng)]
    own = _generate(passages, passages, rng, min(generated, len(passages) * 6))
    if generated > len(own):
        rows += _generate(doc_passages(), passages, rng, generated - len(own))
    rows += own
    rng.shuffle(rows)
    return rows, held


def _variants(rows: list[dict], passages: list[str], rng: random.Random) -> list[dict]:
    """Each written question without its answer's sentence (unanswerable) and behind an unrelated passage."""
    out = []
    for row in rows:
        if row["answers"]["text"]:
            start, text = row["answers"]["answer_start"][0], row["answers"]["text"][0]
            removed = _without_sentence(row["context"], start, text)
            if removed:
                out.append({**row, "id": row["id"] + "-removed", "context": removed, "answers": _none()})
        other = rng.choice([p for p in passages if p != row["context"]])
        out.append(_behind(row, other))
    return out


def _behind(row: dict, other: str) -> dict:
    """The row with an unrelated passage before its context (answer offsets moved along)."""
    shift = len(other) + 1
    answers = {
        "text": row["answers"]["text"],
        "answer_start": [s + shift for s in row["answers"]["answer_start"]],
    }
    return {**row, "id": row["id"] + "-behind", "context": f"{other} {row['context']}", "answers": answers}


def _none() -> dict:
    return {"text": [], "answer_start": []}


def _without_sentence(context: str, start: int, text: str) -> str | None:
    """The context without the sentence holding [start, start+len(text)), or None if the answer remains elsewhere."""
    for a, b in sentence_spans(context):
        if a <= start < b:
            rest = (context[:a] + context[b:]).strip()
            rest = " ".join(rest.split())
            return rest if text.lower() not in rest.lower() and len(rest) > 40 else None
    return None


def sentence_questions(sentence: str, rng: random.Random) -> list[tuple[str, int, str]]:
    """(question, answer offset in the sentence, answer text) made from one sentence by rules."""
    found = []
    m = _DEFINITION.match(sentence)
    if m and not {m["subj"].split()[0].lower(), m["subj"].split()[-1].lower()} & _NOT_SUBJECT:
        subj = m["subj"][0].lower() + m["subj"][1:] if not m["subj"][1:2].isupper() else m["subj"]
        found.append((f"What {m['verb']} {subj}?", m.start("pred"), m["pred"].strip()))
    m = _BECAUSE.match(sentence)
    if m:
        found.append((f"Why {_thin(m['head'], rng, keep=1.0)}?", m.start("why"), m["why"].strip()))
    for m in _CALLED.finditer(sentence):
        found.append(_cloze(sentence, m.start("name"), m["name"], "What is", rng))
    for m in _NUMBER.finditer(sentence):
        if len(m[0]) >= 2 or m[0].isdigit():
            word = (
                "When"
                if re.fullmatch(r"1\d{3}|20\d{2}", m[0])
                else rng.choice(["How many", "How much", "What"])
            )
            found.append(_cloze(sentence, m.start(), m[0], word, rng))
    for m in _NAME.finditer(sentence):
        found.append(_cloze(sentence, m.start(), m[0], rng.choice(["Who", "What", "Which"]), rng))
    for m in _QUOTED.finditer(sentence):
        name = m["q"] or m["call"]
        found.append(_cloze(sentence, m.start("q") if m["q"] else m.start("call"), name, "Which", rng))
    found = [(re.sub(r"[\"`]+", "", q), s, a) for q, s, a in found]  # quote marks left around a removed term
    return [
        (" ".join(q.split()), s, a)
        for q, s, a in found
        if a and sentence[s : s + len(a)] == a and len(q.split()) >= 4
    ]


def _cloze(sentence: str, start: int, answer: str, wh: str, rng: random.Random) -> tuple[str, int, str]:
    """A question from the words around the answer: a window of the sentence without it, thinned, after `wh`."""
    before = sentence[:start].split()[-8:]
    after = sentence[start + len(answer) :].rstrip(".!?").split()[:8]
    rest = _thin(" ".join(before + after), rng)
    return f"{wh} {rest}?", start, answer


def _thin(text: str, rng: random.Random, keep: float = 0.85) -> str:
    """Drop a few words at random (people rarely repeat a sentence word for word), and trailing punctuation."""
    words = [w for w in text.split() if rng.random() < keep] or text.split()
    out = " ".join(words).strip(" ,;:.")
    return out[0].lower() + out[1:] if out[1:2].islower() else out


@cache
def doc_passages(max_passages: int = 4000) -> tuple[str, ...]:
    """Passages of 2-5 prose sentences from CPython's documentation (read at run time)."""
    passages = []
    for doc in builtin_documents():
        spans = [(a, b) for a, b in sentence_spans(doc["text"]) if _prose(doc["text"][a:b])]
        for i in range(0, len(spans) - 1, 4):
            chunk = [" ".join(doc["text"][a:b].split()) for a, b in spans[i : i + 4]]
            if len(chunk) >= 2:
                passages.append(" ".join(chunk))
    random.Random(0).shuffle(passages)
    return tuple(passages[:max_passages])


def _prose(sentence: str) -> bool:
    """A sentence worth asking about: 6-45 words of prose, not a code example (a "word" of over 30 characters:
    "UUID('{12345678-1234-...}')")."""
    words = sentence.split()
    return (
        6 <= len(words) <= 45
        and is_quotable(sentence)
        and "\n\n" not in sentence
        and max(map(len, words)) <= 30
    )


def _generate(sources, passages: list[str], rng: random.Random, count: int) -> list[dict]:
    """About `count` rows: 60% answerable questions from `sources`, 40% their unanswerable variants."""
    rows: list[dict] = []
    sources = list(sources)
    rng.shuffle(sources)
    for p, passage in enumerate(sources):
        if len(rows) >= count:
            break
        spans = sentence_spans(passage)
        a, b = rng.choice(spans)
        made = sentence_questions(passage[a:b], rng)
        if not made:
            continue
        question, offset, answer = rng.choice(made)
        row = {
            "id": f"gen-{len(rows)}",
            "title": "",
            "context": passage,
            "question": question,
            "answers": {"text": [answer], "answer_start": [a + offset]},
        }
        roll = rng.random()
        if roll < 0.6:
            rows.append(row if rng.random() < 0.7 else _behind(row, rng.choice(passages)))
        elif roll < 0.85:
            removed = _without_sentence(passage, a + offset, answer)
            if removed:
                rows.append({**row, "context": removed, "answers": _none()})
        else:
            other = sources[(p + 1) % len(sources)]
            if answer.lower() not in other.lower():
                rows.append({**row, "context": other, "answers": _none()})
    return rows
