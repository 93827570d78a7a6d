"""Static word embeddings: skip-gram with negative sampling and CBOW (Mikolov et al., 2013) in PyTorch."""

from __future__ import annotations

import contextlib
import io
import math
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmkit import record
from llmkit.errors import UserError
from llmkit.interrupt import GracefulInterrupt, TrainingInterrupted

_WORD = re.compile(r"[a-z][a-z0-9_]*(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-cased words (letters, digits, underscores, apostrophes)."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """Words seen at least min_count times, most frequent first, with their counts."""

    def __init__(self, words: list[str], min_count: int = 5, max_size: int | None = None):
        counts = Counter(words)
        kept = [(w, c) for w, c in counts.most_common(max_size) if c >= min_count]
        if not kept:
            raise UserError(
                f"no word occurs {min_count} times or more; use more text or a lower --min_count."
            )
        self.words = [w for w, _ in kept]
        self.counts = np.array([c for _, c in kept], dtype=np.float64)
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def ids(self, words: list[str]) -> np.ndarray:
        """Ids of the words in the vocabulary (the others are dropped)."""
        return np.array([self.index[w] for w in words if w in self.index], dtype=np.int64)

    def lookup(self, word: str) -> int:
        """The id of a word, or a clear error when it is not in the vocabulary."""
        if word not in self.index:
            raise UserError(
                f"{word!r} is not in the vocabulary ({len(self)} words seen at least min_count times)."
            )
        return self.index[word]


class Word2Vec(nn.Module):
    """Input and output embedding tables; the input table is the word vectors one keeps."""

    def __init__(self, vocab_size: int, dim: int = 100, mode: str = "skipgram"):
        super().__init__()
        if mode not in ("skipgram", "cbow"):
            raise UserError(f"mode must be skipgram or cbow, got {mode!r}.")
        self.mode = mode
        self.inp, self.out = nn.Embedding(vocab_size, dim), nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.inp.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.out.weight)

    def loss(self, center: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Negative-sampling loss: -log s(u.v) - sum log s(-u.v_neg).

        skip-gram: center (B,) predicts one context word (B,); CBOW: the mean of the context (B, 2w) predicts the center.
        """
        if self.mode == "skipgram":
            v, target = self.inp(center), context
        else:
            v, target = self.inp(context).mean(dim=1), center
        pos = (v * self.out(target)).sum(-1)
        neg = torch.bmm(self.out(negatives), v.unsqueeze(-1)).squeeze(-1)
        return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean()

    def vectors(self) -> np.ndarray:
        """The learned word vectors, unit-normalised (rows of the input table)."""
        w = self.inp.weight.detach().cpu().numpy()
        return w / (np.linalg.norm(w, axis=1, keepdims=True) + 1e-8)


def training_pairs(
    ids: np.ndarray, window: int, mode: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(center, context) pairs with a random window size per position, as in word2vec; CBOW gets padded windows."""
    n = len(ids)
    if mode == "skipgram":
        spans = rng.integers(1, window + 1, n)  # each position's own window size
        centers, contexts = [], []
        for offset in range(1, window + 1):
            left, right = ids[: n - offset], ids[offset:]
            forward, backward = spans[: n - offset] >= offset, spans[offset:] >= offset
            centers += [left[forward], right[backward]]
            contexts += [right[forward], left[backward]]
        return np.concatenate(centers), np.concatenate(contexts)
    idx = np.arange(window, n - window)
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    return ids[idx], ids[idx[:, None] + offsets]


def _refuse_diverged(progress: dict, lr: float) -> None:
    """End the run at an epoch whose mean loss is NaN or infinite (its vectors are useless), naming the fix."""
    loss = progress["losses"][-1]
    if math.isfinite(loss):
        return
    from llmkit.lm.divergence import diverged  # only now: llmkit.lm loads transformers

    where = f"epoch {len(progress['losses'])} (step {progress['steps'][-1]})"
    raise diverged(where, f"the mean loss is {loss}; nothing of this epoch was saved", lr)


def train_word2vec(
    words: list[str],
    *,
    dim: int = 100,
    mode: str = "skipgram",
    window: int = 5,
    negatives: int = 5,
    min_count: int = 5,
    epochs: int = 3,
    batch_size: int = 1024,
    lr: float = 0.01,
    subsample: float = 1e-4,
    seed: int = 0,
    checkpoint: str | Path | None = None,
) -> tuple[Word2Vec, Vocabulary, list[float], float, list[int]]:
    """Train word vectors; returns (model, vocabulary, loss per epoch, words per second, optimizer steps taken
    by the end of each epoch).

    With `checkpoint` (a file path), every finished epoch is saved there and a rerun continues from it; the
    first Ctrl-C saves the current batch there and stops.
    """
    if not words:
        raise UserError("the corpus has no words.")
    vocab = Vocabulary(words, min_count)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    ids = vocab.ids(words)
    if subsample:  # drop very frequent words with probability 1 - sqrt(t / f)
        freq = vocab.counts / vocab.counts.sum()
        keep_p = np.minimum(1.0, np.sqrt(subsample / freq) + subsample / freq)
        ids = ids[rng.random(len(ids)) < keep_p[ids]]
    noise = torch.tensor(vocab.counts**0.75 / (vocab.counts**0.75).sum(), dtype=torch.float)  # unigram^(3/4)
    model = Word2Vec(len(vocab), dim, mode)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    settings = {"dim": dim, "mode": mode, "window": window, "negatives": negatives, "min_count": min_count}
    settings |= {
        "batch_size": batch_size,
        "lr": lr,
        "subsample": subsample,
        "seed": seed,
        "words": len(words),
    }
    # losses and optimizer steps so far per finished epoch; `batch`, `total`, `batches`: how far the epoch in
    # progress got
    progress = {"losses": [], "steps": [], "seen": 0, "seconds": 0.0, "batch": 0, "total": 0.0, "batches": 0}
    if checkpoint and Path(checkpoint).is_file():
        progress = _resume(Path(checkpoint), settings, model, opt, rng)
    with GracefulInterrupt() if checkpoint else contextlib.nullcontext() as interrupt:
        for _ in range(len(progress["losses"]), epochs):
            epoch_start = rng.bit_generator.state  # a checkpoint mid-epoch rebuilds the epoch's pairs from it
            start = time.perf_counter()
            centers, contexts = training_pairs(ids, window, mode, rng)
            order = rng.permutation(len(centers))
            for i in range(progress["batch"] * batch_size, len(order), batch_size):
                b = order[i : i + batch_size]
                c, ctx = torch.from_numpy(centers[b]), torch.from_numpy(contexts[b])
                neg = torch.multinomial(noise, len(b) * negatives, replacement=True).view(len(b), negatives)
                loss = model.loss(c, ctx, neg)
                opt.zero_grad()
                loss.backward()
                opt.step()
                progress.update(total=progress["total"] + loss.item(), batches=progress["batches"] + 1)
                progress["batch"] += 1
                if interrupt and interrupt.requested:
                    progress["seconds"] += time.perf_counter() - start
                    _save(Path(checkpoint), settings, progress, model, opt, epoch_start)
                    done = f"epoch {len(progress['losses']) + 1} of {epochs}, batch {progress['batch']}"
                    raise TrainingInterrupted(f"saved {checkpoint} ({done}); run the same command to resume.")
            progress["losses"].append(progress["total"] / max(progress["batches"], 1))
            progress["steps"].append((progress["steps"][-1] if progress["steps"] else 0) + progress["batch"])
            _refuse_diverged(progress, lr)  # before the checkpoint: the one saved stays usable
            progress.update(batch=0, total=0.0, batches=0)
            progress["seen"] += len(ids)
            progress["seconds"] += time.perf_counter() - start
            if checkpoint:
                _save(Path(checkpoint), settings, progress, model, opt, rng.bit_generator.state)
    words_per_second = progress["seen"] / max(progress["seconds"], 1e-9)
    return model, vocab, progress["losses"], words_per_second, progress["steps"]


def _save(path: Path, settings: dict, progress: dict, model: Word2Vec, opt, epoch_rng: dict) -> None:
    """Everything a rerun needs to continue where this one is, in one file written atomically; `epoch_rng`
    is the NumPy generator's state at the start of the epoch to (re)enter."""
    state = {
        "settings": settings,
        "progress": progress,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
    }
    state |= {"numpy_rng": epoch_rng, "torch_rng": torch.get_rng_state()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    record.write_atomic(path, buffer.getvalue())


def _resume(path: Path, settings: dict, model: Word2Vec, opt, rng: np.random.Generator) -> dict:
    """Load a checkpoint saved by `_save` into the model, optimizer and RNGs; returns its progress."""
    state = torch.load(path, weights_only=True)
    saved = state["settings"]
    changed = [f"{k} {saved.get(k)} -> {v}" for k, v in settings.items() if saved.get(k) != v]
    if changed:
        raise UserError(
            f"{path} was saved by a run with other settings or text ({', '.join(changed)}); "
            "use another --output_dir, or delete that file to start over."
        )
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    progress = state["progress"]
    # a checkpoint from before steps were kept: its epochs' steps are unknown (the list stays shorter than losses)
    progress.setdefault("steps", [])
    print(
        f"resuming from {path} (epoch {len(progress['losses']) + 1}, batch {progress['batch']})", flush=True
    )
    return progress


def finished_epochs(checkpoint: str | Path) -> int:
    """How many epochs a word2vec checkpoint has finished (0 when there is none, or it cannot be read)."""
    try:
        return len(torch.load(checkpoint, weights_only=True)["progress"]["losses"])
    except Exception:  # no checkpoint yet, or one _resume will name as damaged
        return 0


def neighbours(vectors: np.ndarray, vocab: Vocabulary, word: str, k: int = 10) -> list[tuple[str, float]]:
    """The k words with the most similar vectors (cosine)."""
    sims = vectors @ vectors[vocab.lookup(word)]
    order = [i for i in np.argsort(-sims) if vocab.words[i] != word][:k]
    return [(vocab.words[i], float(sims[i])) for i in order]


def analogy(
    vectors: np.ndarray, vocab: Vocabulary, words: tuple[str, str, str], *, k: int = 5
) -> list[tuple[str, float]]:
    """Words closest to a - b + c for words (a, b, c) (king - man + woman ~ queen), excluding the three inputs."""
    a, b, c = words
    query = vectors[vocab.lookup(a)] - vectors[vocab.lookup(b)] + vectors[vocab.lookup(c)]
    sims = vectors @ (query / (np.linalg.norm(query) + 1e-8))
    order = [i for i in np.argsort(-sims) if vocab.words[i] not in (a, b, c)][:k]
    return [(vocab.words[i], float(sims[i])) for i in order]


def save_text_format(vectors: np.ndarray, vocab: Vocabulary, path: str | Path) -> Path:
    """The plain word2vec text format: a 'count dim' header, then 'word v1 v2 ...' per line."""

    def write(tmp: Path) -> None:  # line by line: a large vocabulary never sits in memory as one string
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{len(vocab)} {vectors.shape[1]}\n")
            for word, v in zip(vocab.words, vectors):
                f.write(word + " " + " ".join(f"{x:.6f}" for x in v) + "\n")

    record.write_atomic(path, write)
    return Path(path)


def load_text_format(path: str | Path) -> tuple[np.ndarray, Vocabulary]:
    """Read vectors saved by save_text_format (or any word2vec text file)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    words, rows = [], []
    for line in lines[1:]:
        word, *values = line.split(" ")
        words.append(word)
        rows.append([float(v) for v in values])
    vocab = Vocabulary(words, min_count=1)
    vocab.words, vocab.index = words, {w: i for i, w in enumerate(words)}
    return np.array(rows, dtype=np.float32), vocab
