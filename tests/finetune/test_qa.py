"""Extractive QA: `llmkit finetune-qa` learns to point at answers (and to say none), resumes after Ctrl-C, refuses
bad SQuAD files with one line, and its output serves `llmkit.rag.reader.Reader` on passages it never saw."""

import json
import random
import signal

import pytest
import torch
import transformers
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, TrainerCallback

from llmkit.finetune.common import packaged_minilm
from llmkit.finetune.qa_eval import score_model, score_spans
from llmkit.finetune.qa_spans import QuestionAnsweringArguments, Span
from llmkit.rag.reader import Reader
from llmkit.recipes.finetune_qa import main as finetune_qa
from tests.finetune.helpers import squad_answers

NAMES = (
    "Alice Bruno Chloe Dmitri Elena Farid Greta Hugo Ingrid Jonas Kemal Lucia Mateo Nadia Oskar Priya".split()
)
HELD_NAMES = "Quentin Rosa Sven Tamara Umberto Vera".split()
CITIES = "Lisbon Oslo Quito Nairobi Hanoi Perth Dublin Lima Seoul Tunis Riga Porto".split()
JOBS = ["baker", "pilot", "nurse", "plumber", "teacher", "painter", "farmer", "dentist"]


def _passage(rng, names):
    """Two people, where each lives and what each does, and the questions it does and does not answer."""
    a, b, absent = rng.sample(names, 3)
    ca, jb = rng.choice(CITIES), rng.choice(JOBS)
    context = f"{a} lives in {ca}. {b} works as a {jb}."
    qas = [
        (f"Where does {a} live?", ca),
        (f"What is {b}'s job?", jb),
        (f"Where does {absent} live?", None),
        (f"How old is {a}?", None),
    ]
    rows = []
    for question, answer in qas:
        start = context.index(answer) if answer else None
        rows.append((question, context, answer, start))
    return rows


@pytest.fixture(scope="session")
def qa_files(tmp_path_factory):
    """Train rows as flat JSONL; held-out passages (other people) in the official nested SQuAD JSON."""
    folder = tmp_path_factory.mktemp("qa")
    rng = random.Random(0)
    train = [r for _ in range(30) for r in _passage(rng, NAMES)]
    rows = [
        {"id": f"t{i}", "title": "", "context": c, "question": q, "answers": squad_answers(a, s)}
        for i, (q, c, a, s) in enumerate(train)
    ]
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    held = [_passage(rng, HELD_NAMES) for _ in range(5)]
    articles = [
        {
            "title": f"held-{p}",
            "paragraphs": [
                {
                    "context": rows[0][1],
                    "qas": [
                        {
                            "id": f"h{p}-{k}",
                            "question": q,
                            "answers": [{"text": a, "answer_start": s}] if a else [],
                            "is_impossible": a is None,
                        }
                        for k, (q, _, a, s) in enumerate(rows)
                    ],
                }
            ],
        }
        for p, rows in enumerate(held)
    ]
    (folder / "dev.json").write_text(json.dumps({"version": "v2.0", "data": articles}))
    return folder


def _argv(qa_files, out, *extra):
    return [
        "--model_name_or_path",
        packaged_minilm(),
        "--train_file",
        str(qa_files / "train.jsonl"),
        "--validation_file",
        str(qa_files / "dev.json"),
        "--max_length",
        "32",
        "--doc_stride",
        "8",
        "--learning_rate",
        "3e-4",
        "--per_device_train_batch_size",
        "8",
        "--num_train_epochs",
        "4",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
        "--logging_steps",
        "5",
        "--disable_tqdm",
        "true",
        "--save_total_limit",
        "1",
        "--output_dir",
        str(out),
        *extra,
    ]


class _CtrlCAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            signal.raise_signal(signal.SIGINT)


@pytest.fixture(scope="session")
def qa_run(qa_files, tmp_path_factory):
    """A tiny QA run (scored once, at its end), stopped by Ctrl-C at step 3 and finished by the same command."""
    out = tmp_path_factory.mktemp("qa_run")
    original = transformers.Trainer.__init__

    def with_ctrl_c(self, *a, **k):
        original(self, *a, **k)
        self.add_callback(_CtrlCAt(3))

    transformers.Trainer.__init__ = with_ctrl_c
    try:
        with pytest.raises(KeyboardInterrupt, match="checkpoint-3"):
            finetune_qa(_argv(qa_files, out))
    finally:
        transformers.Trainer.__init__ = original
    return out, finetune_qa(_argv(qa_files, out))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_an_interrupted_qa_run_resumes_where_it_stopped(qa_run):
    out, metrics = qa_run
    assert metrics["resumed_from"].endswith("checkpoint-3")
    assert metrics["trained_steps"] == 60  # 120 questions, batch 8, 4 epochs: steps 4-60 ran after the resume


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_finetune_qa_beats_the_untrained_model_on_held_out_passages(qa_run, qa_files):
    out, metrics = qa_run
    rows = [
        {"id": q["id"], "question": q["question"], "context": p["context"], "answers": _nested(q)}
        for a in json.loads((qa_files / "dev.json").read_text())["data"]
        for p in a["paragraphs"]
        for q in p["qas"]
    ]
    torch.manual_seed(0)
    untrained = AutoModelForQuestionAnswering.from_pretrained(packaged_minilm()).eval()
    tokenizer = AutoTokenizer.from_pretrained(packaged_minilm())
    before = score_model(
        untrained, tokenizer, rows, qa_args=QuestionAnsweringArguments(doc_stride=8), max_length=32
    )
    assert (
        metrics["eval_f1"] >= before["f1"] + 30 and metrics["eval_exact_match"] >= before["exact_match"] + 30
    )
    assert metrics["eval_HasAns_f1"] > 50 and metrics["eval_NoAns_exact_match"] > 50, metrics
    assert before["HasAns_f1"] < 20  # the untrained head points anywhere
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["eval_f1"] == metrics["eval_f1"] and saved["version_2_with_negative"] is True
    assert "Reader(" in (out / "README.md").read_text()  # the card shows a way to load it that works
    # the validation's best null threshold is one of the cuts the default threshold could make, or a better one
    assert saved["eval_best_f1"] >= saved["eval_f1"] - 1e-6 and "eval_best_f1_thresh" in saved


def test_the_best_null_threshold_is_the_cut_with_the_best_f1():
    def row(i, answer):
        return {
            "id": i,
            "answers": {"text": [answer] if answer else [], "answer_start": [0] if answer else []},
        }

    examples = [row("a", "Lima"), row("b", None), row("c", "Oslo"), row("d", None), row("e", "Riga")]
    spans = {
        "a": Span("Lima", 0, 4, 3.0),  # right, surest
        "b": Span("x", 0, 1, 1.0),  # an unanswerable question answered: loses its point below 1.0
        "c": Span("in Oslo", 0, 7, -1.0),  # half right (F1 2/3)
        "d": Span("y", 0, 1, -2.0),
        "e": None,  # no span at all: never answered
    }
    scores = score_spans(spans, examples, threshold=0.0)
    assert scores["best_f1_thresh"] == 2.0  # halfway between the last margin answered (3) and the next (1)
    assert scores["best_f1"] == pytest.approx(60.0)  # a and b and d right of five
    assert scores["f1"] == pytest.approx(40.0)  # at 0, b is answered and loses its point
    assert score_spans(spans, examples, threshold=2.0)["f1"] == pytest.approx(scores["best_f1"])


def _nested(qa):
    return {
        "text": [a["text"] for a in qa["answers"]],
        "answer_start": [a["answer_start"] for a in qa["answers"]],
    }


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_reader_finds_spans_in_unseen_passages_and_says_none_otherwise(qa_run):
    reader = Reader(qa_run[0])
    assert (reader.max_length, reader.doc_stride) == (32, 8)  # read from the run's metrics.json
    passages = [
        "Xavier lives in Lima. Wanda works as a nurse.",
        "Yusuf lives in Perth. Zoe works as a dentist.",
    ]
    spans = reader.read("Where does Xavier live?", passages)
    assert (
        spans[0] is not None
        and spans[0].text == "Lima"
        and passages[0][spans[0].start : spans[0].end] == "Lima"
    )
    assert reader.best("Where does Xavier live?", passages)[0] == 0  # the passage that answers scores highest
    assert reader.read("How old is Yusuf?", passages) == [None, None]  # neither says: no span
    assert reader.best("How old is Yusuf?", passages) is None
    # a passage far longer than the 32-token window: read in overlapping windows, offsets still exact
    long = " ".join(["Nobody else lives on this quiet street today."] * 12) + " " + passages[1]
    (found,) = reader.read("Where does Yusuf live?", [long])
    assert found is not None and found.text == "Perth" and long[found.start : found.end] == "Perth"
    # a question longer than the window is cut, not an error (it would leave no room for the passage)
    rambling = "Where does Yusuf live, " + "and I really do mean live, " * 20 + "please?"
    assert len(reader.read(rambling, passages)) == 2


def test_the_reader_loads_a_lora_adapter_with_its_trained_head(tmp_path):
    from peft import AutoPeftModelForQuestionAnswering

    from llmkit.finetune.lora import LoraArguments, apply_lora

    model = AutoModelForQuestionAnswering.from_pretrained(packaged_minilm())
    torch.manual_seed(1)
    torch.nn.init.normal_(model.qa_outputs.weight, std=0.5)  # a head unlike any fresh initialisation
    adapter = apply_lora(model, LoraArguments(use_lora=True), "QUESTION_ANS", trainable_heads=["qa_outputs"])
    adapter.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(packaged_minilm()).save_pretrained(tmp_path)
    reader = Reader(tmp_path)
    inputs = reader.tokenizer("Where?", "Ada lives in Rome.", return_tensors="pt")
    with torch.no_grad():
        expected = (
            AutoPeftModelForQuestionAnswering.from_pretrained(str(tmp_path)).eval()(**inputs).start_logits
        )
        assert torch.allclose(reader.model(**inputs).start_logits, expected, atol=1e-5)


@pytest.mark.slow
def test_rag_with_the_reader_abstains_when_it_reads_none_and_reports_the_span_it_quotes(qa_run, tmp_path):
    from llmkit.rag import RAG, Document, Store
    from llmkit.rag.abstain import Gate

    store = Store(tmp_path / "store")
    store.add_documents(
        [
            Document("xavier.md", "Xavier lives in Lima. Wanda works as a nurse."),
            Document("yusuf.md", "Yusuf lives in Perth. Zoe works as a dentist."),
        ]
    )
    gate = Gate(min_score=0.0)  # let every question through the topic gate: the reader decides
    with_reader = RAG(store, gate=gate, reader=Reader(qa_run[0]))
    answer = with_reader.ask("Where does Xavier live?")
    assert not answer.abstained and answer.span == "Lima"
    assert "Lima" in answer.citations[0].sentence and answer.citations[0].hit.doc_id == "xavier.md"
    assert answer.to_dict()["span"] == "Lima"
    unanswerable = "How old is Yusuf?"
    assert with_reader.ask(unanswerable).abstained  # the reader finds no span in any source
    assert not RAG(store, gate=gate).ask(unanswerable).abstained  # the topic gate alone answers it
