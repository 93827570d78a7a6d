"""Word vectors with skip-gram + negative sampling (or CBOW): neighbours, analogies, word2vec text export, and a
comparison with the input embeddings of a GPT-2 the pretraining recipe produced.

    python recipes/train_word2vec.py                                   # the built-in CPython docs
    python recipes/train_word2vec.py --text_file corpus.txt --mode cbow --dim 200 --epochs 5
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llmkit import record
from llmkit.arguments import parse_args
from llmkit.classic.arguments import ClassicArguments, epochs
from llmkit.classic.data import load_text
from llmkit.classic.launch import start
from llmkit.classic.loop import write_report
from llmkit.classic.word2vec import (
    finished_epochs,
    neighbours,
    save_text_format,
    tokenize,
    train_word2vec,
)
from llmkit.errors import run_cli
from llmkit.launch import one_run_per_output_dir
from llmkit.log import get_logger

logger = get_logger(__name__)


@dataclass
class Word2VecArguments(
    ClassicArguments,
    recipe="train-word2vec",
    app_flag="word2vec",
    sizes=("dim", "window", "negatives", "min_count"),
):
    output_dir: str = "runs/word2vec"
    num_train_epochs: int = epochs(3)
    per_device_train_batch_size: int = field(
        default=1024, metadata={"help": "(centre, context) pairs per batch.", "aliases": ["--batch_size"]}
    )
    learning_rate: float = field(default=0.01, metadata={"help": "Adam learning rate."})
    text_file: str | None = field(
        default=None, metadata={"help": "A text file (default: the built-in CPython docs)."}
    )
    mode: str = field(
        default="skipgram", metadata={"help": "skipgram or cbow.", "choices": ["skipgram", "cbow"]}
    )
    dim: int = field(default=100, metadata={"help": "Vector dimensions."})
    window: int = field(default=5, metadata={"help": "Context words on each side."})
    negatives: int = field(default=5, metadata={"help": "Negative samples per pair."})
    min_count: int = field(default=5, metadata={"help": "Drop words seen fewer times."})
    probe_words: list[str] = field(
        default_factory=lambda: ["list", "file", "string", "exception", "thread", "integer"],
        metadata={"help": "Words whose neighbours are printed and saved."},
    )
    compare_with: str | None = field(
        default="runs/gpt2-tiny",
        metadata={"help": "A causal LM folder whose input embeddings to compare with."},
    )


TYPES = (Word2VecArguments,)
# the shared classic flags that word2vec's own loop has no use for: accepted, they were silently ignored
NOT_USED = ("precision", "report_to", "max_grad_norm", "logging_steps", "save_total_limit")


def compare_with_lm(vectors: np.ndarray, vocab, model_dir: str, n_words: int = 300) -> dict | None:
    """Agreement between word2vec and an LM's static input embeddings on words that are one LM token each:
    the Spearman correlation of their pairwise cosine similarities, and the overlap of 10 nearest neighbours."""
    if not model_dir or not (Path(model_dir) / "config.json").is_file():
        return None
    from scipy.stats import spearmanr
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmkit.loading import load_pretrained

    hint = "Pass --compare_with a causal LM folder (e.g. runs/gpt2-tiny), or '' to skip the comparison."
    tokenizer = load_pretrained(AutoTokenizer, model_dir, hint=hint)
    model = load_pretrained(AutoModelForCausalLM, model_dir, hint=hint)
    table = model.get_input_embeddings().weight.detach().numpy()
    pairs = [
        (i, ids[0])
        for i, w in enumerate(vocab.words[:2000])
        if len(ids := tokenizer(" " + w, add_special_tokens=False)["input_ids"]) == 1
    ][:n_words]
    if len(pairs) < 20:
        return None
    a = vectors[[i for i, _ in pairs]]
    b = table[[j for _, j in pairs]]
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    sa, sb = a @ a.T, b @ b.T
    upper = np.triu_indices(len(pairs), 1)
    top = lambda s: [set(np.argsort(-row)[1:11]) for row in s]  # noqa: E731
    overlap = float(np.mean([len(x & y) / 10 for x, y in zip(top(sa), top(sb))]))
    return {
        "words": len(pairs),
        "similarity_spearman": float(spearmanr(sa[upper], sb[upper]).statistic),
        "neighbour_overlap@10": overlap,
    }


def probe_words(wanted: list[str], vocab) -> list[str]:
    """The probe words in the vocabulary; if none is (the CPython defaults on a user's own --text_file), the
    text's most frequent longer words, said: the run used to end, trained but unexported, with an error."""
    found = [w for w in wanted if w in vocab.index]
    if found:
        return found
    frequent = [w for w in vocab.words if len(w) > 3][: len(wanted)] or vocab.words[: len(wanted)]
    logger.warning(
        f"none of the probe words {wanted} is in this text's vocabulary; showing the neighbours of its frequent "
        f"words {frequent} instead (--probe_words chooses them)."
    )
    return frequent


@one_run_per_output_dir
def main(argv: list[str] | None = None) -> dict:
    """Train word vectors, probe and export them; returns metrics.json's content."""
    (args,) = parse_args(TYPES, argv, hide=NOT_USED)
    out = start(args)
    words = tokenize(load_text(args.text_file))
    checkpoint = out / "checkpoints" / "word2vec.pt"  # a rerun of the same command continues from it
    before = finished_epochs(checkpoint)
    model, vocab, losses, words_per_second, steps = train_word2vec(
        words,
        dim=args.dim,
        mode=args.mode,
        window=args.window,
        negatives=args.negatives,
        min_count=args.min_count,
        epochs=args.num_train_epochs,
        batch_size=args.per_device_train_batch_size,
        lr=args.learning_rate,
        seed=args.seed,
        checkpoint=checkpoint,
    )
    vectors = model.vectors()
    probes = {w: neighbours(vectors, vocab, w, 8) for w in probe_words(args.probe_words, vocab)}
    save_text_format(vectors, vocab, out / "vectors.txt")
    record.write_atomic(
        out / "config.json", json.dumps({"architecture": "word2vec", "mode": args.mode, "dim": args.dim})
    )
    # optimizer steps, not epochs: one epoch of many batches was reported as "1 step"; unknown (None) for epochs
    # resumed from a checkpoint written before steps were counted
    steps = [None] * (len(losses) - len(steps)) + steps if len(steps) < len(losses) else steps
    history = [
        {"epoch": i + 1, "step": n, "train_loss": loss} for i, (loss, n) in enumerate(zip(losses, steps))
    ]
    this_run = losses[before:]  # a rerun printed every run's mean loss as "averaged over this run"
    metrics = {
        "train_loss": sum(this_run) / len(this_run) if this_run else None,
        "epoch": len(losses),
        "global_step": steps[-1] if steps and len(steps) == len(losses) and None not in steps else None,
        "vocabulary": len(vocab),
        "corpus_words": len(words),
        "words_per_second": words_per_second,
        "neighbours": probes,
        "compared_with_lm": compare_with_lm(vectors, vocab, args.compare_with),
    }
    notes = tuple(
        f"near {w!r}: " + ", ".join(f"{n} ({s:.2f})" for n, s in near) for w, near in probes.items()
    )
    return write_report(
        args,
        metrics,
        history,
        title=f"word2vec ({args.mode}), vectors in {out / 'vectors.txt'}",
        headline=("vocabulary", "words_per_second"),
        notes=notes,
    )


if __name__ == "__main__":
    run_cli(main)
