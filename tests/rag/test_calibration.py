"""Per-store abstention thresholds, the nonsense-question rule, and picking the sentence that answers."""

import json

import pytest

from llmkit.cli import main as llmkit_main
from llmkit.rag import RAG, Document, Gate, Store
from llmkit.rag.calibration import FLOOR, place_threshold
from llmkit.rag.selection import selection_bonus
from tests.rag.helpers import QUESTIONS, TOPICS, topic_documents

# A second, unrelated collection: questions about it are off-collection for the topics store, and back.
KITCHEN = {
    "kettle.md": "# Kettles\n\nAn electric kettle switches itself off when a bimetallic strip near the spout bends "
    "in the steam. Descale it every month with white vinegar where the water is hard.",
    "knives.md": "# Knives\n\nA chef's knife is sharpened on a whetstone held at an angle of about fifteen degrees. "
    "Hone the edge with a steel before each use and never put the knife in the dishwasher.",
    "rice.md": "# Rice\n\nRinse long-grain rice until the water runs clear, then simmer one cup of rice in one and a half "
    "cups of water for eighteen minutes with the lid on.",
}
KITCHEN_QUESTIONS = [
    "What makes an electric kettle turn itself off?",
    "At what angle should a chef's knife be sharpened?",
    "How long should rice simmer?",
]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """Two stores indexed by `llmkit rag index` (which calibrates), each with its folder of documents."""
    stores = {}
    for name, docs in (("topics", TOPICS), ("kitchen", KITCHEN)):
        folder = tmp_path_factory.mktemp(name) / "docs"
        folder.mkdir()
        for file, text in docs.items():
            (folder / file).write_text(text)
        stores[name] = folder.parent / "store"
        llmkit_main(["rag", "index", str(folder), "--store", str(stores[name])])
    return stores


@pytest.mark.slow  # indexes and calibrates two stores through the CLI (~15 s on a busy machine)
def test_index_calibrates_each_store_and_the_threshold_transfers(calibrated, embedder, capsys):
    capsys.readouterr()
    for path in calibrated.values():
        manifest = json.loads((path / "manifest.json").read_text())
        thresholds = manifest["calibration"]["min_score"]
        assert set(thresholds) == {"dense", "lexical", "hybrid"} and all(
            FLOOR <= t <= 0.55 for t in thresholds.values()
        )
    topics = RAG(Store(calibrated["topics"], embedder=embedder), k=3)
    kitchen = RAG(Store(calibrated["kitchen"], embedder=embedder), k=3)
    assert (
        topics.gate.min_score
        == json.loads((calibrated["topics"] / "manifest.json").read_text())["calibration"]["min_score"]
    )
    # default settings, no per-store tuning: each store answers its own questions and refuses the other's
    assert not any(topics.ask(q).abstained for q, _ in QUESTIONS)
    assert all(topics.ask(q).abstained for q in KITCHEN_QUESTIONS)
    assert not any(kitchen.ask(q).abstained for q in KITCHEN_QUESTIONS)
    assert sum(kitchen.ask(q).abstained for q, _ in QUESTIONS) >= 9
    # re-indexing an unchanged folder keeps the calibration (nothing to refit)
    before = (calibrated["kitchen"] / "manifest.json").read_text()
    llmkit_main(
        ["rag", "index", str(calibrated["kitchen"].parent / "docs"), "--store", str(calibrated["kitchen"])]
    )
    assert (
        json.loads(capsys.readouterr().out)["abstain_below"] == json.loads(before)["calibration"]["min_score"]
    )
    assert (calibrated["kitchen"] / "manifest.json").read_text() == before


def test_an_off_topic_probe_that_happens_to_be_on_topic_moves_nothing():
    off = [0.1 + 0.002 * i for i in range(60)]
    answerable = [0.5 + 0.004 * i for i in range(60)]
    assert abs(place_threshold(off + [0.9], answerable) - place_threshold(off, answerable)) < 0.005
    assert place_threshold([0.0] * 10, [0.1] * 10) == FLOOR  # probes that say nothing: the floor holds


def test_a_question_with_no_word_in_the_store_abstains(topic_store):
    rag = RAG(topic_store, k=3)
    for nonsense in ("%_%", "asdf qwer", "zxcv qwop?", "???"):
        answer = rag.ask(nonsense)
        assert answer.abstained and answer.citations == [], nonsense
    assert not rag.ask(QUESTIONS[0][0]).abstained
    # "sea", "rise", "day" are in no document, but they are words: the evidence decides
    assert not rag.ask(QUESTIONS[2][0]).abstained
    assert not RAG(topic_store, k=3, gate=Gate(-1.0)).ask("asdf qwer").abstained  # a gate at -1 is wide open


def test_the_quoted_sentence_is_the_one_that_answers(tmp_path, embedder):
    text = (
        "# Harbour Light\n\nThe Harbour Light is the white tower on the north pier of Port Ellis. "
        "Its construction was completed in 1874, after six years of work on the pier. "
        "The tower is 31 metres tall and its lamp is visible for 18 nautical miles."
    )
    store = Store(tmp_path / "store", embedder=embedder)
    store.add_documents([Document("light.md", text, {"source": "light.md"})])
    answer = RAG(store, k=1).ask("When was the Harbour Light completed?")
    # "Its construction ..." is quoted with the sentence its "Its" refers to (llmkit.sentences.answer_units)
    assert answer.citations[0].sentence == (
        "The Harbour Light is the white tower on the north pier of Port Ellis. "
        "Its construction was completed in 1874, after six years of work on the pier."
    )
    assert "31 metres" in RAG(store, k=1).ask("How tall is the Harbour Light?").citations[0].sentence


def test_selection_bonus_prefers_coverage_and_the_kind_of_answer():
    sentences = ["The tower stands on the pier.", "It was completed in 1874.", "Visitors like the tower."]
    bonus = selection_bonus("When was the tower completed?", sentences)
    assert bonus[1] == max(bonus) and bonus[2] < bonus[1]


def test_a_footnote_number_in_a_document_is_not_a_citation(tmp_path, embedder):
    text = "# KDD\n\nThe KDD data set was made from the 1998 DARPA intrusion detection evaluation [2]. It is big."
    store = Store(tmp_path / "store", embedder=embedder)
    store.add_documents([Document("kdd.md", text, {"source": "kdd.md"})])
    answer = RAG(store, k=1).ask("What was the KDD data set made from?")
    assert answer.cited == [1] and answer.invalid_citations == []
    assert "1998 DARPA" in answer.citations[0].sentence and "(2)" in answer.text


def test_a_fit_of_a_store_another_process_changed_meanwhile_is_not_saved(tmp_path, embedder, monkeypatch):
    """Two `rag index` at once: the first's fit, of fewer documents, was saved over the store's after the second's
    documents landed, and printed as the store's abstain_below."""
    from llmkit.rag import calibration

    docs = topic_documents()
    first = Store(tmp_path / "s", embedder=embedder)
    first.add_documents(docs[:2])
    other = Store(tmp_path / "s", embedder=embedder)  # another process's handle
    real, fitted = calibration.calibrate_store, []

    def racing(store):
        fit = real(store)
        if not fitted:
            other.add_documents(docs[2:3])  # the other `rag index` commits while this one fits
        fitted.append(fit["generation"])
        return fit

    monkeypatch.setattr(calibration, "calibrate_store", racing)
    result = calibration.ensure_calibrated(first)
    saved = json.loads((first.path / "manifest.json").read_text())["calibration"]
    assert len(fitted) == 2 and saved["generation"] == result["generation"] == first._generation()
