"""Answers a user can trust: sentences split right, ranked best first, abstention before any generator, safe sources."""

import json

import pytest

from llmkit.errors import UserError
from llmkit.rag import RAG, Document, Store
from llmkit.rag.abstain import ABSTAIN_TEXT, Gate, calibrate
from llmkit.rag.chunking import chunk_document
from llmkit.sentences import split_sentences
from llmkit.ui.rag_chat import sources_html
from tests.rag.helpers import QUESTIONS

UNANSWERABLE = ["Who won the 2018 FIFA World Cup?", "What is the ibuprofen dose for adults?", "???", "🙂"]


def test_sentence_splitter_keeps_abbreviations_decimals_and_code_together():
    text = (
        "Dr. Amara Okafor met J. Watt at 7.30 a.m. on Monday. One horsepower is 745.7 watts! Call `os.path.join()` "
        "to build paths, e.g. for logs. Is it?\n\n# A heading\n\n```\nx = 1. Not prose\n```\n    indented. Code\n"
        ">>> print(1)\n- a list item ends here\n- another item"
    )
    assert split_sentences(text) == [
        "Dr. Amara Okafor met J. Watt at 7.30 a.m. on Monday.",
        "One horsepower is 745.7 watts!",
        "Call `os.path.join()` to build paths, e.g. for logs.",
        "Is it?",
        "a list item ends here",
        "another item",
    ]


def test_extractive_answer_puts_the_best_sentence_first_and_drops_padding(topic_store):
    answer = RAG(topic_store, k=5).ask("What is molten rock called once it flows out over the ground?")
    # the answering sentence first: once it flows over the ground, molten rock is lava (not magma)
    assert not answer.abstained and answer.text.startswith("Once it erupts through a vent")
    assert answer.text.startswith(answer.citations[0].sentence) and "called lava" in answer.text
    assert all(c.n in answer.cited for c in answer.citations)
    assert "bees" not in answer.text.lower() and "tides" not in answer.text.lower()  # no off-topic filler
    quoted = [s for s in answer.evidence.sentences if s.text in answer.text]
    assert len(quoted) <= 3 and [s.rank for s in quoted] == sorted((s.rank for s in quoted), reverse=True)


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_unanswerable_questions_abstain_without_citations(topic_store, question):
    answer = RAG(topic_store, k=3).ask(question)
    assert answer.abstained and answer.text == ABSTAIN_TEXT or "nothing" in answer.text
    assert answer.cited == [] and answer.citations == []


class _Recorder:
    """A generator that records whether it was called (stands for the transformers and OpenAI backends)."""

    name = "recorder"

    def __init__(self):
        self.calls = 0

    def stream(self, question, hits, evidence=None):
        self.calls += 1
        yield "It says so [1]."


def test_every_generator_sits_behind_the_same_gate(topic_store):
    recorder = _Recorder()
    rag = RAG(topic_store, recorder, k=3)
    assert rag.ask(UNANSWERABLE[0]).abstained and recorder.calls == 0
    answer = rag.ask(QUESTIONS[0][0])
    assert recorder.calls == 1 and answer.cited == [1] and answer.citations[0].hit.doc_id == "bees.md"
    assert "waggle" in answer.citations[0].sentence  # an LLM's citation points at the source's best sentence
    # the threshold is configurable: a gate at -1 never abstains, one at 1 always does
    assert not RAG(topic_store, _Recorder(), gate=Gate(-1.0)).ask(UNANSWERABLE[0]).abstained
    assert RAG(topic_store, _Recorder(), gate=Gate(1.0)).ask(QUESTIONS[0][0]).abstained
    with pytest.raises(UserError, match="relative"):
        Gate(relative=2.0)


def test_calibration_separates_the_two_kinds_of_questions():
    threshold = calibrate([0.5, 0.6, 0.7, 0.8], [0.1, 0.2, 0.3])
    assert 0.3 < threshold < 0.5
    assert calibrate([0.2, 0.6, 0.7], [0.4]) < 0.2  # never drops an answerable question below the 95% target


def test_sources_panel_escapes_document_text_and_highlights_the_quote(embedder, tmp_path):
    store = Store(tmp_path / "s", embedder=embedder)
    text = (
        "# Kettles\n\n<img src=x onerror=alert(1)> **Bold claim.** An electric kettle switches itself off when "
        "a bimetallic strip bends as the water boils. Older kettles whistle instead."
    )
    store.add_documents([Document("kettle.md", text, {"source": "notes/kettle.md", "title": "Kettle notes"})])
    answer = RAG(store, k=1).ask("Why does an electric kettle switch itself off?")
    html = sources_html(answer)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html
    assert "# Kettles" in html and "**Bold claim.**" in html  # Markdown shown as text, not rendered
    assert "<mark>An electric kettle switches itself off" in html
    assert "Kettle notes" in html and "notes/kettle.md" in html and "score" in html


def test_a_chunk_spanning_pages_says_so(embedder):
    page1 = "First page text about rivers and their deltas. " * 3
    doc = Document(
        "r.pdf",
        page1 + "\n\n" + "Second page about estuaries.",
        {"source": "r.pdf", "pages": [(1, 0), (2, len(page1) + 2)]},
    )
    chunks = chunk_document(doc, embedder.tokenizer, 160, 32)
    assert chunks[0].metadata["page"] == 1 and chunks[0].metadata["page_end"] == 2
    from llmkit.rag.retrieval import Hit

    assert Hit(1, "c", "r.pdf", "t", 1.0, metadata=chunks[0].metadata).source == "r.pdf, pages 1-2"


def test_answer_json_shape(topic_store):
    data = RAG(topic_store, k=3).ask(QUESTIONS[7][0]).to_dict()
    json.dumps(data)
    assert (
        set(data) == {"answer", "citations", "abstained", "span", "sources"} and data["span"] is None
    )  # no reader
    assert set(data["citations"][0]) == {"n", "doc_id", "source", "page", "sentence", "score"}
