"""Retrieval finds the right passage, in every mode, with filters, across threads and reopenings."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from llmkit.errors import UserError
from llmkit.rag import Document, Retriever, Store
from llmkit.rag.index import build_index, search_index
from tests.rag.helpers import QUESTIONS, TOPICS


def _hits_at(retriever, mode, k):
    return sum(
        expected in [h.doc_id for h in retriever.search(q, k=k, mode=mode)] for q, expected in QUESTIONS
    )


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_paraphrased_questions_find_their_document(topic_store, mode):
    retriever = Retriever(topic_store)
    assert _hits_at(retriever, mode, 1) >= 9  # paraphrases share few words with the answer
    assert _hits_at(retriever, mode, 3) == len(QUESTIONS)


def test_lexical_search_finds_keywords_and_hybrid_is_at_least_as_good(topic_store):
    retriever = Retriever(topic_store)
    top = retriever.search("waggle dance", k=1, mode="lexical")
    assert top[0].doc_id == "bees.md" and top[0].score > 0
    assert retriever.search("SYN-ACK handshake", k=1, mode="lexical")[0].doc_id == "tcp.md"
    # user text is never FTS syntax
    assert retriever.search('"; DROP TABLE chunks; -- NEAR( *', k=3, mode="lexical") == []
    for k in (1, 3):
        best_single = max(_hits_at(retriever, "dense", k), _hits_at(retriever, "lexical", k))
        assert _hits_at(retriever, "hybrid", k) >= best_single


def test_filters_apply_before_top_k(tmp_path, embedder):
    store = Store(tmp_path / "s", embedder=embedder)
    docs = [
        Document(
            f"bees/{i}.md",
            f"Note {i}: bees dance to share where flowers are.",
            {"source": f"bees/{i}.md", "lang": "en"},
        )
        for i in range(30)
    ]
    docs += [
        Document(
            f"other/{i}.md",
            f"Note {i}: lava cools into basalt near volcanoes.",
            {"source": f"other/{i}.md", "lang": "de"},
        )
        for i in range(5)
    ]
    store.add_documents(docs)
    retriever = Retriever(store)
    # Unfiltered, the 30 bee notes fill the top 10; a post-filter would return nothing.
    for mode in ("dense", "lexical", "hybrid"):
        hits = retriever.search("note on how bees share flower locations", k=4, mode=mode, source="other/*")
        assert len(hits) == 4 and all(h.doc_id.startswith("other/") for h in hits), mode
        hits = retriever.search("a note on bees and flowers", k=5, mode=mode, where={"lang": "de"})
        assert len(hits) == 5 and {h.metadata["lang"] for h in hits} == {"de"}
    assert retriever.search("bees", k=3, source="nowhere/*") == []


def test_store_survives_reopen(topic_store, embedder):
    reopened = Store(topic_store.path, embedder=embedder)
    assert len(reopened) == len(topic_store) and reopened.count_documents() == len(TOPICS)
    q, expected = QUESTIONS[2]
    assert Retriever(reopened).search(q, k=1)[0].doc_id == expected


def test_other_embedding_model_is_refused(topic_store):
    with pytest.raises(UserError, match="was built with embedding model"):
        Store(topic_store.path, embedding_model="sentence-transformers/all-mpnet-base-v2")


def test_concurrent_queries_return_their_own_results(topic_store):
    retriever = Retriever(topic_store)
    questions = QUESTIONS[:8]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda qa: retriever.search(qa[0], k=2, mode="hybrid"), questions * 2))
    for (q, expected), hits in zip(questions * 2, results):
        assert hits[0].doc_id == expected, q
        assert hits[0].text in TOPICS[expected]  # the chunk text belongs to its own document, uncorrupted


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_every_index_kind_finds_near_duplicates(kind):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2000, 64)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    ids = np.arange(1000, 3000, dtype=np.int64)
    index = build_index(base, ids, kind)
    _, found = search_index(index, base[123] + 0.01, 5)
    assert found[0] == 1123
    allowed = ids[::7]
    _, found = search_index(index, base[0], 5, allowed)
    assert set(found) <= set(allowed)


def test_metadata_filters_take_any_key_and_refuse_values_sqlite_cannot_compare(tmp_path, embedder):
    store = Store(tmp_path / "s", embedder=embedder)
    store.add_documents(
        [
            Document(
                "a.md", "Bees dance to share where flowers are.", {"source": "a.md", "team name": "red"}
            ),
            Document("b.md", "Lava cools into basalt.", {"source": "b.md", "x.y": 2}),
        ]
    )
    retriever = Retriever(store)
    # a key with a space or a dot was read as a JSON path: it matched nothing, silently
    assert [h.doc_id for h in retriever.search("bees", where={"team name": "red"})] == ["a.md"]
    assert [h.doc_id for h in retriever.search("lava", where={"x.y": 2})] == ["b.md"]
    # null matches the chunks without the key (= NULL matched none, ever)
    assert {h.doc_id for h in retriever.search("lava", where={"team name": None})} == {"b.md"}
    # these were a JSON path error and an OverflowError: HTTP 500 from `rag serve`
    with pytest.raises(UserError, match="without '\"'"):
        retriever.search("bees", where={'a"b': 1})
    with pytest.raises(UserError, match="too large to compare"):
        retriever.search("bees", where={"page": 10**30})
    with pytest.raises(UserError, match="give a finite number"):
        retriever.search("bees", where={"page": float("nan")})


def test_a_hybrid_score_is_the_same_whether_a_filter_leaves_one_candidate_or_not(topic_store):
    # min-max scaling of a lone candidate gave 0: "score 0.000" under a filter for the chunk shown 1.000 without
    retriever = Retriever(topic_store)
    question = QUESTIONS[0][0]  # bees
    unfiltered = retriever.search(question, k=3, mode="hybrid")
    assert unfiltered[0].doc_id == "bees.md" and unfiltered[0].score == pytest.approx(1.0)
    for filters in ({"source": "bees.md"}, {"where": {"title": "bees"}}):
        (hit,) = retriever.search(question, k=3, mode="hybrid", **filters)
        assert hit.doc_id == "bees.md" and hit.score == pytest.approx(1.0), filters


def test_hybrid_fusion_scores_ties_as_the_best_and_keeps_every_other_ranking():
    from llmkit.rag.retrieval import _fuse_scores

    # distinct scores on both legs: the order and the numbers as min-max fusion gives them
    cos, bm25 = {1: 0.2, 2: 0.6, 3: 0.5}, {1: 3.0, 2: 1.0, 3: 2.0}
    assert [(i, round(s, 3)) for i, s in _fuse_scores([1, 2, 3], cos, bm25)] == [
        (3, 0.625),
        (1, 0.5),
        (2, 0.5),
    ]
    # every candidate ties: each is the best on that leg (was 0.0 for all)
    assert [s for _, s in _fuse_scores([1, 2], {1: 0.5, 2: 0.5}, {1: 2.0, 2: 2.0})] == [1.0, 1.0]
    assert [s for _, s in _fuse_scores([7], {7: 0.3}, {7: 1.5})] == [1.0]
    # one leg tied: the order follows the other leg, unchanged; no shared word at all is no keyword score
    assert _fuse_scores([1, 2], {1: 0.3, 2: 0.5}, {1: 2.0, 2: 2.0}) == [(2, 1.0), (1, 0.5)]
    assert _fuse_scores([1, 2], {1: 0.3, 2: 0.5}, {}) == [(2, 0.5), (1, 0.0)]
