"""RNN, LSTM or GRU on characters: a language model with sampling (measured against a unigram baseline),
or a sequence classifier.

    python recipes/train_rnn.py                                    # LSTM language model on the built-in CPython docs
    python recipes/train_rnn.py --cell gru --text_file book.txt --epochs 5
    python recipes/train_rnn.py --task classify                    # which library area a docstring documents
"""

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from llmkit import record
from llmkit.arguments import parse_args
from llmkit.classic.arguments import ClassicArguments, epochs
from llmkit.classic.data import load_text
from llmkit.classic.launch import start
from llmkit.classic.loop import fit, summarize
from llmkit.classic.models import CELLS, SequenceModel
from llmkit.errors import UserError, run_cli
from llmkit.launch import one_run_per_output_dir


@dataclass
class RNNArguments(
    ClassicArguments, recipe="train-rnn", app_flag="char_rnn", sizes=("seq_len", "hidden", "layers")
):
    output_dir: str = "runs/char-lstm"
    num_train_epochs: int = epochs(3)
    learning_rate: float = 3e-3
    cell: str = field(default="lstm", metadata={"help": "rnn, lstm or gru.", "choices": list(CELLS)})
    task: str = field(
        default="lm",
        metadata={
            "help": "lm (next character) or classify (a label per text; the built-in docstring areas).",
            "choices": ["lm", "classify"],
        },
    )
    text_file: str | None = field(
        default=None, metadata={"help": "A text file (default: the built-in CPython docs)."}
    )
    max_chars: int = field(
        default=400_000, metadata={"help": "Use at most this many characters (CPU-friendly default; 0: all)."}
    )
    seq_len: int = field(default=128, metadata={"help": "Characters per training sequence."})
    hidden: int = field(default=256, metadata={"help": "Hidden size of each recurrent layer."})
    layers: int = field(default=2, metadata={"help": "Recurrent layers."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_chars < 0:  # it cut that many characters off the end
            raise UserError(f"--max_chars must be 0 (all the text) or more, got {self.max_chars}.")
        if self.task == "classify" and self.text_file:  # it trained on the built-in areas, the file unread
            raise UserError(
                "--text_file is for --task lm; --task classify trains on the built-in docstrings' library "
                "areas (labelled texts). Drop one of them."
            )


def windows(ids: torch.Tensor, seq_len: int) -> TensorDataset:
    """Non-overlapping (input, next-character target) windows."""
    n = (len(ids) - 1) // seq_len
    return TensorDataset(ids[: n * seq_len].view(n, seq_len), ids[1 : n * seq_len + 1].view(n, seq_len))


TYPES = (RNNArguments,)


@one_run_per_output_dir
def main(argv: list[str] | None = None) -> dict:
    """Train the recurrent model the flags describe; returns metrics.json's content."""
    (args,) = parse_args(TYPES, argv)
    out = start(args)
    if args.task == "classify":
        return classify(args)
    text = load_text(args.text_file, args.max_chars)
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text])
    split = int(len(ids) * 0.9)
    train, val = windows(ids[:split], args.seq_len), windows(ids[split:], args.seq_len)
    if len(val) == 0:
        raise UserError(
            f"the text is too short ({len(text)} characters) for sequences of {args.seq_len}; lower --seq_len."
        )
    # The unigram baseline: predict every character from the training frequencies alone.
    freq = torch.bincount(ids[:split], minlength=len(chars)).float() + 1
    unigram = float(-(freq / freq.sum()).log()[ids[split:]].mean())

    kwargs = {"vocab_size": len(chars), "cell": args.cell, "hidden": args.hidden, "layers": args.layers}
    model = SequenceModel(**kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)

    def step(mods, batch, update):
        x, y = batch
        logits, _ = mods["model"](x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        update("model", loss)  # clipped to --max_grad_norm: recurrent nets need it
        return {"loss": loss.detach()}

    def evaluate(mods):
        m = mods["model"]
        device = next(m.parameters()).device
        x, y = val.tensors
        losses = [
            F.cross_entropy(
                m(x[i : i + 64].to(device))[0].flatten(0, 1),
                y[i : i + 64].to(device).flatten(),
                reduction="sum",
            )
            for i in range(0, len(x), 64)
        ]
        val_loss = float(sum(losses) / y.numel())
        return {"loss": val_loss, "bits_per_char": val_loss / math.log(2)}

    metrics = fit(
        args,
        {"model": model},
        {"model": optimizer},
        step,
        train=train,
        config={"architecture": "char-" + args.cell, "kwargs": kwargs, "chars": chars},
        evaluate=evaluate,
        extra={"unigram_eval_loss": unigram},
        headline=("loss", "bits_per_char"),
        summary=False,
    )
    if metrics:
        sample = "T" + "".join(
            chars[i]
            for i in model.sample([index.get("T", 0)], 200, generator=torch.Generator().manual_seed(0))
        )
        record.write_atomic(out / "sample.txt", sample)
        notes = (
            f"validation loss {metrics['eval_loss']:.3f} nats/char vs a unigram baseline's {unigram:.3f}",
        )
        summarize(args, metrics, title=f"char-{args.cell}", notes=(*notes, f"sample {sample[:120]!r}"))
    return metrics


def classify(args: RNNArguments) -> dict:
    """Read each text character by character and predict its label from the last hidden state."""
    from llmkit.classic.classify import train_classifier
    from llmkit.finetune.builtin import classification_sample

    rows = classification_sample()
    labels = sorted({r["label"] for r in rows})
    chars = sorted({c for r in rows for c in r["text"]})
    index = {c: i + 1 for i, c in enumerate(chars)}  # 0 pads, on the left: the last step always reads text

    def encode(text: str) -> list[int]:
        ids = [index[c] for c in text[: args.seq_len]]
        return [0] * (args.seq_len - len(ids)) + ids

    x = torch.tensor([encode(r["text"]) for r in rows])
    y = torch.tensor([labels.index(r["label"]) for r in rows])
    n_test = len(rows) // 5
    train, test = TensorDataset(x[n_test:], y[n_test:]), TensorDataset(x[:n_test], y[:n_test])
    kwargs = {
        "vocab_size": len(chars) + 1,
        "cell": args.cell,
        "hidden": args.hidden,
        "layers": args.layers,
        "n_classes": len(labels),
    }

    class LastStep(SequenceModel):  # the shared classifier loop expects logits only
        def forward(self, ids, state=None):
            return super().forward(ids, state)[0]

    config = {
        "architecture": f"char-{args.cell}-classifier",
        "kwargs": kwargs,
        "chars": chars,
        "labels": labels,
    }
    return train_classifier(args, LastStep(**kwargs), train, test, config=config)


if __name__ == "__main__":
    run_cli(main)
