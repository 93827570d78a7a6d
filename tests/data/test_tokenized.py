"""`llmkit tokenize`: packed blocks on disk in the narrowest dtype, written atomically; pretraining reads them."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from datasets import DatasetDict

from llmkit.arguments import parse_args
from llmkit.checkpoints import checkpoint_problem
from llmkit.data import DataArguments, TokenizeArguments, load_tokenized, tokenize_corpus
from llmkit.data.tokenized import METADATA, narrowest_dtype
from llmkit.errors import UserError
from tests.data.helpers import BLOCK, DOCS, tokenize
from tests.helpers import FAST_TRAINING, REPO, llmkit_in_process, run_pretrain


def blocks(ds) -> np.ndarray:
    """The stored blocks as they lie on disk (numpy formatting would widen them to int64)."""
    column = ds.data.column("input_ids")
    assert column.type == pa.list_(pa.uint16(), BLOCK) or column.type.value_type == pa.uint16()
    return column.combine_chunks().flatten().to_numpy().reshape(len(ds), -1)


def test_blocks_are_the_token_stream_in_uint16(tokenized):
    splits, tokenizer, meta = load_tokenized(tokenized)
    assert (
        meta["dtype"] == "uint16"
        and meta["block_size"] == BLOCK
        and meta["vocab_size"] == len(tokenizer) <= 400
    )
    assert isinstance(splits, DatasetDict) and set(splits) == {"train", "validation"}
    raw = blocks(splits["train"])
    assert raw.dtype == np.uint16 and raw.shape == (meta["splits"]["train"]["blocks"], BLOCK)

    # The blocks are exactly the training documents' tokens, each followed by end-of-text, in order.
    texts = json.loads((tokenized / METADATA).read_text())["splits"]["train"]
    assert texts["block_tokens"] == raw.size and texts["tokens"] - BLOCK < raw.size <= texts["tokens"]
    eos = tokenizer.eos_token_id
    documents = [
        tokenizer.decode(ids) for ids in np.split(raw.ravel(), np.flatnonzero(raw.ravel() == eos) + 1)[:-1]
    ]
    assert set(d.removesuffix("<|endoftext|>") for d in documents) <= set(DOCS)
    assert len(documents) >= texts["documents"] - 2


def test_bytes_per_token_on_disk(tokenized):
    meta = json.loads((tokenized / METADATA).read_text())
    arrow = sum(p.stat().st_size for p in (tokenized / "train").glob("*.arrow"))
    assert arrow / meta["splits"]["train"]["block_tokens"] <= 2.2


def test_two_processes_write_the_same_blocks(tmp_path, corpus_dir, tokenized):
    two = tokenize(tmp_path / "two", corpus_dir, "--num_proc", "2")
    one, _, _ = load_tokenized(tokenized)
    other, _, _ = load_tokenized(two)
    for split in ("train", "validation"):
        assert np.array_equal(blocks(one[split]), blocks(other[split]))


def test_narrowest_dtype():
    assert [narrowest_dtype(n) for n in (256, 257, 50257, 65536, 65537, 200_000)] == [
        "uint8",
        "uint16",
        "uint16",
        "uint16",
        "uint32",
        "uint32",
    ]


def test_pretraining_reads_blocks_without_tokenizing(tokenized, tmp_path, monkeypatch):
    import llmkit.lm.pretrain  # noqa: F401  (the package exports a function of the same name)

    module = sys.modules["llmkit.lm.pretrain"]
    monkeypatch.setattr(module, "load_corpus", lambda *a, **k: pytest.fail("the corpus was loaded again"))
    monkeypatch.setattr(module, "get_tokenizer", lambda *a, **k: pytest.fail("a tokenizer was made again"))
    out = tmp_path / "run"
    metrics = run_pretrain(
        [
            "--tokenized_dataset",
            str(tokenized),
            "--n_layer",
            "1",
            "--n_head",
            "2",
            "--n_embd",
            "32",
            "--n_positions",
            str(BLOCK),
            *FAST_TRAINING,
            "--max_steps",
            "4",
            "--eval_steps",
            "4",
            "--save_steps",
            "4",
            "--sample_max_new_tokens",
            "3",
            "--per_device_eval_batch_size",
            "4",
            "--output_dir",
            str(out),
        ]
    )
    assert metrics["global_step"] == 4 and metrics["block_size"] == BLOCK
    assert metrics["corpus"] == f"tokenized:{tokenized}"
    saved = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
    assert saved == json.loads((tokenized / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--block_size", "16"], "differs from .* blocks of 32 tokens"),
        (["--n_positions", "16"], "model's context is 16; pass --n_positions 32"),
        (["--tokenizer_name", "gpt2"], "its blocks were made with the tokenizer saved in it"),
        (["--vocab_size", "999"], "--vocab_size 999 differs from .*'s tokenizer of 3.. tokens"),
        (["--train_files", "x.txt"], "already holds the corpus"),
        ([], "validation split has 10 blocks, less than one evaluation batch"),
    ],
)
def test_training_flags_that_do_not_match_the_blocks(tokenized, tmp_path, flags, message):
    base = [
        "--tokenized_dataset",
        str(tokenized),
        "--n_layer",
        "1",
        "--n_head",
        "2",
        "--n_embd",
        "32",
        "--n_positions",
        "64",
    ]
    argv = [*base, *flags, "--output_dir", str(tmp_path / "run")]
    if "--n_positions" in flags:
        argv = [a for i, a in enumerate(argv) if i not in (8, 9)]  # drop the base --n_positions 64
    with pytest.raises(UserError, match=message):
        run_pretrain(argv)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def _train(dataset: Path, out: Path, steps: int, *extra: str) -> dict:
    """A few steps of a one-layer model on a tokenized dataset, saving every 2 steps."""
    return run_pretrain(
        [
            "--tokenized_dataset",
            str(dataset),
            "--n_layer",
            "1",
            "--n_head",
            "2",
            "--n_embd",
            "32",
            "--n_positions",
            str(BLOCK),
            *FAST_TRAINING,
            "--max_steps",
            str(steps),
            "--eval_steps",
            "2",
            "--save_steps",
            "2",
            "--sample_max_new_tokens",
            "2",
            "--per_device_eval_batch_size",
            "4",
            "--output_dir",
            str(out),
            *extra,
        ]
    )


def test_resume_refuses_another_tokenized_dataset(tokenized, tmp_path):
    other_corpus = tmp_path / "other"
    other_corpus.mkdir()
    (other_corpus / "a.txt").write_text(
        "\n\n".join(
            f"Chapter {i} speaks of {'few large stones ' * (i % 7)}before it stops." for i in range(300)
        )
    )
    size = json.loads((tokenized / METADATA).read_text())["vocab_size"]
    other = tokenize(tmp_path / "other-ds", other_corpus, "--vocab_size", str(size))
    assert json.loads((other / METADATA).read_text())["vocab_size"] == size  # another BPE of the same size
    run = tmp_path / "run"
    _train(tokenized, run, 2)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}

    with pytest.raises(UserError) as err:
        _train(other, run, 4)
    assert f"--tokenized_dataset {other}" in str(err.value) and f"--tokenized_dataset {tokenized}" in str(
        err.value
    )
    assert {
        p.name: p.read_bytes() for p in run.iterdir() if p.is_file()
    } == before  # the run's tokenizer kept
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2"]

    # the same tokenizer in another folder (blocks copied elsewhere) continues the run
    copy = tmp_path / "copy"
    shutil.copytree(tokenized, copy)
    metrics = _train(copy, run, 4)
    assert metrics["resumed_from"].endswith("checkpoint-2") and metrics["global_step"] == 4


def test_the_dataset_tokenizer_and_size_may_be_named(tokenized, tmp_path):
    named = tmp_path / "named-tokenizer"
    shutil.copytree(tokenized / "tokenizer", named)  # the same files in another folder: the content decides
    size = json.loads((tokenized / METADATA).read_text())["vocab_size"]
    metrics = _train(
        tokenized, tmp_path / "run", 2, "--tokenizer_name", str(named), "--vocab_size", str(size)
    )
    assert metrics["global_step"] == 2 and metrics["tokenizer_size"] == size


def test_a_folder_that_is_not_tokenized(tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(UserError, match="no llmkit_tokenized.json .*unfinished run"):
        load_tokenized(tmp_path / "half")


def test_the_summary_command_quotes_a_folder_with_a_space(tmp_path, corpus_dir, capsys):
    out = tokenize(tmp_path / "my data", corpus_dir)
    # it printed `llmkit pretrain --tokenized_dataset .../my data`: two arguments when pasted
    said = capsys.readouterr().out
    assert f"llmkit pretrain --tokenized_dataset '{out}'" in said
    # the heading read "blocks of 32 byte-level BPE trained on the corpus tokens"
    assert "blocks of 32 tokens (byte-level BPE trained on the corpus) ==" in said, said


@pytest.mark.slow
def test_cli_tokenize_then_recipe_trains(tmp_path, corpus_dir, capfd):
    argv = [
        "tokenize",
        "--train_files",
        str(corpus_dir),
        "--block_size",
        "16",
        "--vocab_size",
        "300",
        "--output_dir",
        str(tmp_path / "ds"),
    ]
    cmd = [sys.executable, "-m", "llmkit.cli", *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "== tokenize" in proc.stdout and (tmp_path / "ds" / METADATA).is_file()
    code, stderr = llmkit_in_process(argv, capfd)  # refused before any work: no second interpreter
    assert code == 2 and "already exists" in stderr and "Traceback" not in stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left


def test_streamed_source_is_tokenized_too(tmp_path):
    from tests.data.test_streaming import make_corpus, make_word_tokenizer

    names = make_corpus(tmp_path / "corpus", 2, 10)
    tok = make_word_tokenizer(tmp_path / "tok", names)
    argv = [
        "--streaming",
        "--train_files",
        str(tmp_path / "corpus"),
        "--sample_by",
        "line",
        "--streaming_validation_documents",
        "4",
        "--tokenizer_name",
        str(tok),
        "--block_size",
        "8",
        "--output_dir",
        str(tmp_path / "ds"),
    ]
    splits, tokenizer, meta = load_tokenized(
        tokenize_corpus(*parse_args((DataArguments, TokenizeArguments), argv))
    )
    assert meta["dtype"] == "uint8"  # 23 tokens fit a byte
    # one document per block
    assert (meta["splits"]["train"]["blocks"], meta["splits"]["validation"]["blocks"]) == (
        16,
        4,
    )
    seen = sorted(tokenizer.convert_ids_to_tokens(int(b[0])) for b in splits["train"]["input_ids"])
    assert seen == sorted(names[4:])  # the stream's first 4 documents are the validation split


def test_a_whole_save_deletes_the_incomplete_checkpoints(tokenized, tmp_path):
    run = tmp_path / "run"
    _train(tokenized, run, 2)
    for step in (3, 4):  # what runs killed late in a save left: weights written, no trainer_state.json
        shutil.copytree(run / "checkpoint-2", run / f"checkpoint-{step}")
        (run / f"checkpoint-{step}" / "trainer_state.json").unlink()
    metrics = _train(
        tokenized, run, 4
    )  # resumes from checkpoint-2, keeps incomplete-checkpoint-4, then saves 4
    assert metrics["resumed_from"].endswith("checkpoint-2")
    assert sorted(p.name for p in run.glob("*checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert checkpoint_problem(run / "checkpoint-4") is None


def test_a_stream_with_nothing_left_to_train_on_is_refused(tmp_path, corpus_dir):
    # its 300 paragraphs all went to validation (1,000 held out): a BPE trained on nothing, then the
    # dataset generator's traceback; `pretrain --streaming` trained on nothing and exited 0
    with pytest.raises(UserError, match="no documents left to train on after the first 1,000 held out"):
        tokenize(tmp_path / "ds", corpus_dir, "--streaming", "true")
    assert not (tmp_path / "ds").exists()
    with pytest.raises(UserError, match="--seed must be between 0 and 2\\*\\*32 - 1, got -1"):
        tokenize(tmp_path / "ds", corpus_dir, "--seed", "-1")


def test_pretrains_worker_flag_is_refused_naming_num_proc(tmp_path):
    # pretrain's flag, parsed here too, was read nowhere: the corpus was tokenized in one process
    argv = ["--preprocessing_num_workers", "4", "--output_dir", str(tmp_path / "ds")]
    with pytest.raises(UserError, match="takes --num_proc N .*--preprocessing_num_workers is pretrain's"):
        tokenize_corpus(*parse_args((DataArguments, TokenizeArguments), argv))
    assert not (tmp_path / "ds").exists()
