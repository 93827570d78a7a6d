"""The gate's word check: a question whose distinctive terms the store never uses is about something else."""

import pytest

from llmkit.rag import RAG, Document, Gate, Store
from llmkit.rag.abstain import SUPPORT, lexical_support, question_terms
from tests.rag.helpers import QUESTIONS

# A small library's documentation: questions about another library of the same kind are near-domain.
RINGBUF = {
    "ringbuf.md": "# ringbuf\n\n`RingBuffer(capacity)` keeps the last `capacity` items appended to it. When the buffer "
    "is full, `append()` drops the oldest item to make space for the new one. Call `snapshot()` to get a list of "
    "the items from the oldest to the newest.",
    "threads.md": "# Threads\n\nA RingBuffer is not thread-safe: guard `append()` and `snapshot()` with a lock when "
    "several threads share one buffer. Reading `len(buffer)` needs no lock.",
}


@pytest.fixture(scope="module")
def ringbuf(tmp_path_factory, embedder):
    store = Store(tmp_path_factory.mktemp("ringbuf"), embedder=embedder)
    store.add_documents([Document(k, v, {"source": k, "title": k[:-3]}) for k, v in RINGBUF.items()])
    return store


def test_a_question_naming_another_librarys_identifier_abstains(ringbuf):
    # a low explicit threshold: the cosine alone would answer this on-topic question
    rag = RAG(ringbuf, k=3, gate=Gate(0.1))
    answer = rag.ask("What does collections.deque drop when its maxlen is reached?")
    assert answer.abstained and answer.citations == []
    assert answer.evidence.score >= 0.1 and {"deque", "maxlen"} <= set(answer.evidence.foreign)
    # without the word check the same question is answered: the check, not the cosine, refused it
    assert not RAG(ringbuf, k=3, gate=Gate(0.1, support=0)).ask(answer.question).abstained
    assert not RAG(ringbuf, k=3, gate=Gate(-1.0)).ask(answer.question).abstained  # wide open stays open


def test_a_paraphrased_in_store_question_is_answered(ringbuf):
    # "entry", "room", "left" are in no document, but they are everyday words: left out, not held against it
    answer = RAG(ringbuf, k=3).ask("What happens to the oldest entry once the ring buffer has no room left?")
    assert not answer.abstained and "drops the oldest item" in answer.citations[0].sentence
    assert answer.evidence.support > SUPPORT and answer.evidence.foreign == []
    assert not RAG(ringbuf, k=3).ask("Is RingBuffer safe to share between threads?").abstained


def test_the_topic_stores_paraphrased_questions_keep_their_support(topic_store):
    rag = RAG(topic_store, k=3)
    for question, _ in QUESTIONS:
        evidence = rag.ask(question).evidence
        assert evidence.foreign == [] and evidence.support >= 0.5, (question, evidence.support)


def test_terms_distinctive_words_and_document_names(ringbuf, embedder):
    vocab = embedder.tokenizer.get_vocab()
    terms = {
        lookups[0]: distinctive
        for lookups, _, distinctive in question_terms(
            "Does heapq.merge keep the Moon's token_hex order?", vocab
        )
    }
    assert terms['"heapq"'] and terms['"merge"'] and terms['"token hex"']  # identifiers, part by part
    assert terms['"moon"'] is True  # a capitalised name inside the question, without its 's
    assert terms['"order"'] is False and terms['"keep"'] is False  # everyday words
    terms = {
        lookups[0]: distinctive
        for lookups, _, distinctive in question_terms(
            "How long do I've to wait before the command-line flag turns batch-major itself?", vocab
        )
    }
    # no contraction, no "how long" (the kind of answer), no reflexive; a hyphenated word looked up whole and
    # distinctive only when a part of it is: command-line and batch-major are everyday words
    assert set(terms) == {'"wait"', '"command line"', '"flag"', '"turns"', '"batch major"'}
    assert not any(terms.values())
    hits = RAG(ringbuf, k=3).retriever.retrieve("How does ringbuf drop items?", 3)[0]
    # "ringbuf" names a document (its file name and title): present even where its text does not spell it
    support, foreign = lexical_support(ringbuf, "How does ringbuf drop items?", hits)
    assert foreign == [] and support == 1.0
    support, foreign = lexical_support(ringbuf, "How does ringbuf drop items into the garden?", hits)
    assert foreign == [] and support == 1.0  # "garden": a plain word it never uses, left out
    support, foreign = lexical_support(ringbuf, "Does ringbuf drop items like the SortedDict?", hits)
    assert foreign == ["sorteddict"] and support < 1.0
