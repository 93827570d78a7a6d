"""Streaming: every (rank, data-loader worker) pair reads its own documents, so each block is seen once per pass."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from datasets import load_dataset
from transformers import TrainerCallback

from llmkit.data import pack_stream
from llmkit.data.tokenizer import load_tokenizer
from tests.helpers import REPO, run_pretrain

BLOCK = 8  # each document is 7 words + end-of-text: exactly one block, named by its first word


def make_word_tokenizer(folder: Path, words: list[str]) -> Path:
    """A word-level tokenizer where every word is one token, so block contents are predictable."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<|endoftext|>", "[UNK]", "x", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>", unk_token="[UNK]"
    )
    wrapped.save_pretrained(folder)
    return folder


def make_corpus(root: Path, files: int, docs_per_file: int) -> list[str]:
    """`files` text files of one document per line; returns the document names."""
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for f in range(files):
        lines = [f"d{f * docs_per_file + i}" for i in range(docs_per_file)]
        (root / f"part{f}.txt").write_text("".join(f"{n} x x x x x x\n" for n in lines))
        names += lines
    return names


def seen_in_pass(ds, tokenizer, world_size: int, workers: int) -> Counter:
    """Iterate every rank's stream through a real DataLoader with worker processes; count block names."""
    seen = Counter()
    for rank in range(world_size):
        stream = pack_stream(ds, tokenizer, BLOCK, rank=rank, world_size=world_size)
        for batch in torch.utils.data.DataLoader(stream, batch_size=4, num_workers=workers):
            seen.update(tokenizer.convert_ids_to_tokens(batch["input_ids"][:, 0].tolist()))
    return seen


@pytest.mark.parametrize("files", [4, 3])  # 4: whole files per consumer; 3: every 4th document per consumer
def test_two_ranks_two_workers_read_disjoint_parts(tmp_path, files):
    names = make_corpus(tmp_path / "corpus", files, 16)
    tokenizer = load_tokenizer(str(make_word_tokenizer(tmp_path / "tok", names)))
    ds = load_dataset(
        "text", data_files=sorted(str(p) for p in (tmp_path / "corpus").glob("*.txt")), streaming=True
    )["train"]
    seen = seen_in_pass(ds, tokenizer, world_size=2, workers=2)
    assert seen == Counter(names)  # every document's block once: none lost, none twice


def _launcher(tmp_path: Path) -> Path:
    """The pretraining recipe with a collator that also records each block it batches (per process)."""
    script = tmp_path / "record_and_pretrain.py"
    script.write_text(
        "import json, os, sys\n"
        "import llmkit.lm.pretrain\n"
        "pretrain = sys.modules['llmkit.lm.pretrain']  # the package exports a function of the same name\n"
        "from llmkit.data.packing import collate_blocks\n"
        "from llmkit.errors import run_cli\n"
        "from llmkit.recipes.pretrain_gpt2 import main\n"
        "def recording(features):\n"
        "    batch = collate_blocks(features)\n"
        "    path = os.path.join(os.environ['SEEN_DIR'], f\"rank{os.environ['RANK']}-{os.getpid()}.jsonl\")\n"
        "    with open(path, 'a') as f:\n"
        "        f.writelines(json.dumps(row) + '\\n' for row in batch['input_ids'].tolist())\n"
        "    return batch\n"
        "pretrain.collate_blocks = recording\n"
        "run_cli(main)\n"
    )
    return script


@pytest.mark.multiproc
def test_streamed_pretraining_sees_every_block_once_per_pass(tmp_path):
    names = make_corpus(tmp_path / "corpus", 4, 16)  # 64 blocks: 2 ranks x batch 4 -> 8 steps per pass
    (tmp_path / "val.txt").write_text("".join(f"v{i} x x x x x x\n" for i in range(8)))
    tok = make_word_tokenizer(tmp_path / "tok", [*names, *(f"v{i}" for i in range(8))])
    seen_dir = tmp_path / "seen"
    seen_dir.mkdir()
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEEN_DIR": str(seen_dir), "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "recipes/accelerate/cpu-ddp.yaml"),
        str(_launcher(tmp_path)),
        "--streaming",
        "--train_files",
        str(tmp_path / "corpus"),
        "--validation_files",
        str(tmp_path / "val.txt"),
        "--sample_by",
        "line",
        "--tokenizer_name",
        str(tok),
        "--block_size",
        str(BLOCK),
        "--n_positions",
        str(BLOCK),
        "--n_layer",
        "1",
        "--n_head",
        "2",
        "--n_embd",
        "16",
        "--per_device_train_batch_size",
        "4",
        "--per_device_eval_batch_size",
        "4",
        "--dataloader_num_workers",
        "2",
        "--max_steps",
        "16",
        "--eval_steps",
        "16",
        "--save_steps",
        "16",
        "--logging_steps",
        "4",
        "--sample_max_new_tokens",
        "2",
        "--disable_tqdm",
        "true",
        "--output_dir",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_step"] == 16

    tokenizer = load_tokenizer(str(tok))
    by_rank, recorders = Counter(), set()
    for path in seen_dir.glob("*.jsonl"):
        rank = path.name.split("-")[0]
        for line in path.read_text().splitlines():
            name = tokenizer.convert_ids_to_tokens(json.loads(line)[0])
            if name.startswith("d"):  # training blocks (validation blocks start with v)
                by_rank[rank, name] += 1
                recorders.add((rank, path.name))
    per_doc = Counter()
    for (_, name), n in by_rank.items():
        per_doc[name] += n
    assert per_doc == Counter({n: 2 for n in names})  # 16 steps = 2 passes: every block exactly twice
    assert {rank for rank, _ in by_rank} == {"rank0", "rank1"}
    # a document stays on one rank
    assert all(len({r for r, _ in by_rank if (r, d) in by_rank}) == 1 for d in names)
    for rank in ("rank0", "rank1"):  # tokenized and collated in data-loader worker processes, 2 per rank
        assert len({f for r, f in recorders if r == rank}) >= 2


class _TrainedBlocks(TrainerCallback):
    """Record the first token of every block the model trains on (skipped batches never reach it)."""

    def __init__(self):
        self.seen = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        def record(module, positional, named):
            if module.training:
                self.seen.append(named["input_ids"][:, 0].tolist())

        model.register_forward_pre_hook(record, with_kwargs=True)


@pytest.mark.slow
def test_resuming_a_stream_continues_in_the_first_pass_and_restarts_a_later_one(tmp_path):
    names = make_corpus(tmp_path / "corpus", 4, 16)  # one rank, batch 4: 16 steps per pass
    (tmp_path / "val.txt").write_text("".join(f"v{i} x x x x x x\n" for i in range(8)))
    tok = make_word_tokenizer(tmp_path / "tok", [*names, *(f"v{i}" for i in range(8))])

    def train(out: str, steps: int, save: int) -> list:
        recorder = _TrainedBlocks()
        run_pretrain(
            [
                "--streaming",
                "--train_files",
                str(tmp_path / "corpus"),
                "--validation_files",
                str(tmp_path / "val.txt"),
                "--sample_by",
                "line",
                "--tokenizer_name",
                str(tok),
                "--block_size",
                str(BLOCK),
                "--n_positions",
                str(BLOCK),
                "--n_layer",
                "1",
                "--n_head",
                "2",
                "--n_embd",
                "16",
                "--per_device_train_batch_size",
                "4",
                "--per_device_eval_batch_size",
                "4",
                "--max_steps",
                str(steps),
                "--eval_steps",
                "1000",
                "--save_steps",
                str(save),
                "--sample_max_new_tokens",
                "1",
                "--logging_steps",
                "100",
                "--disable_tqdm",
                "true",
                "--output_dir",
                str(tmp_path / out),
            ],
            callbacks=[recorder],
        )
        return recorder.seen

    straight = train("straight", 22, 1000)
    assert straight[16:] == straight[:6]  # the second pass repeats the first
    train("first", 4, 4)
    assert train("first", 10, 1000) == straight[4:10]  # stopped in pass 1: continues exactly there
    train("later", 18, 18)
    assert train("later", 22, 1000) == straight[16:20]  # stopped in pass 2: that pass starts again
