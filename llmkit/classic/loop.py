"""One Accelerate training loop shared by every classic baseline: devices, mixed precision, several
processes, safetensors checkpoints every epoch, automatic resume, metrics.json and curves."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, Dataset

from llmkit.errors import UserError
from llmkit.plots import plt
from llmkit.runtime import check_launch, configure_threads, prepare_output_dir


@dataclass
class ClassicArguments:
    """Arguments every classic recipe shares."""

    output_dir: str = field(default="runs/classic", metadata={"help": "Where checkpoints, weights, metrics and pictures go."})
    dataset: str = field(default="digits", metadata={"help": "digits (built in), mnist, fashion_mnist, cifar10, or a .npz file."})
    epochs: int = field(default=10, metadata={"help": "Passes over the training data."})
    batch_size: int = field(default=64, metadata={"help": "Examples per batch and process."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate."})
    seed: int = field(default=0, metadata={"help": "Random seed (initialisation, shuffling, sampling)."})
    mixed_precision: str = field(default="auto", metadata={"help": "auto (bf16 on GPUs that have it), no, bf16 or fp16."})
    keep_checkpoints: int = field(default=2, metadata={"help": "Epoch checkpoints kept for resuming."})


def make_accelerator(args: ClassicArguments) -> Accelerator:
    """An Accelerator on the best device, with mixed precision only where the hardware has it."""
    precision = args.mixed_precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if torch.cuda.is_available() else "no"
    return Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())


def fit(args: ClassicArguments, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
        step: Callable[[Accelerator, dict, dict, tuple], dict], train: Dataset, config: dict,
        evaluate: Callable[[dict], dict] | None = None, on_epoch_end: Callable[[int, dict, Path], None] | None = None) -> dict:
    """Train for args.epochs, resuming from the last epoch checkpoint in output_dir; returns the final metrics.

    `step(accelerator, modules, optimizers, batch)` does one update and returns its losses;
    `evaluate(modules)` and `on_epoch_end(epoch, modules, output_dir)` run on the main process.
    """
    check_launch()
    configure_threads()
    out = prepare_output_dir(args.output_dir)
    set_seed(args.seed)
    accelerator = make_accelerator(args)
    if len(train) < args.batch_size * accelerator.num_processes:
        raise UserError(f"the training set has {len(train)} examples, fewer than one batch of {args.batch_size} per process.")
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=True)
    names, opt_names = list(modules), list(optimizers)
    prepared = accelerator.prepare(*modules.values(), *optimizers.values(), loader)
    mods = dict(zip(names, prepared[: len(names)]))
    opts = dict(zip(opt_names, prepared[len(names) : -1]))
    loader = prepared[-1]

    history: list[dict] = []
    start = 0
    checkpoints = sorted((out / "checkpoints").glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))
    if checkpoints:
        accelerator.load_state(str(checkpoints[-1]))
        history = json.loads((checkpoints[-1] / "history.json").read_text())
        start = len(history)
        accelerator.print(f"resuming from {checkpoints[-1]} (epoch {start})")

    for epoch in range(start, args.epochs):
        for m in mods.values():
            m.train()
        sums: dict[str, float] = {}
        n = 0
        for batch in loader:
            for k, v in step(accelerator, mods, opts, batch).items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n += 1
        row = {"epoch": epoch + 1, **{k: v / max(n, 1) for k, v in sums.items()}}
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            plain = {k: accelerator.unwrap_model(m).eval() for k, m in mods.items()}
            with torch.no_grad():
                row.update(evaluate(plain) if evaluate else {})
                if on_epoch_end:
                    on_epoch_end(epoch + 1, plain, out)
            accelerator.print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
        history.append(row)
        ckpt = out / "checkpoints" / f"epoch-{epoch + 1}"
        accelerator.save_state(str(ckpt))  # model(s), optimizer(s) and RNG states, as safetensors
        if accelerator.is_main_process:
            (ckpt / "history.json").write_text(json.dumps(history))
            for old in sorted((out / "checkpoints").glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))[: -args.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    if accelerator.is_main_process:
        for name, m in mods.items():
            save_file({k: v.contiguous() for k, v in accelerator.unwrap_model(m).state_dict().items()}, out / f"{name}.safetensors")
        (out / "config.json").write_text(json.dumps({**config, "args": asdict(args)}, indent=2))
        final = {**history[-1], "epochs": len(history), "world_size": accelerator.num_processes} if history else {}
        (out / "metrics.json").write_text(json.dumps({"final": final, "history": history}, indent=2))
        plot_history(history, out / "curves.png", config.get("architecture", "model"))
        return final
    return {}


def plot_history(history: list[dict], path: Path, title: str) -> None:
    """One panel per logged quantity against the epoch."""
    keys = [k for k in (history[0] if history else {}) if k != "epoch" and isinstance(history[0][k], (int, float))]
    if not keys:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), dpi=100, squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot([h["epoch"] for h in history], [h[key] for h in history], "o-", ms=3)
        ax.set(title=key, xlabel="epoch")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def load_weights(folder: str | Path, architecture: str, name: str = "model") -> tuple[dict, dict]:
    """(state dict, config) of a saved model; a checkpoint of another architecture is a clear error."""
    folder = Path(folder)
    config_file, weights = folder / "config.json", folder / f"{name}.safetensors"
    if not config_file.is_file() or not weights.is_file():
        raise UserError(f"{folder} holds no {name}.safetensors + config.json; pass the output_dir of a classic recipe.")
    config = json.loads(config_file.read_text())
    if config.get("architecture") != architecture:
        raise UserError(f"{folder} holds a {config.get('architecture')!r} checkpoint, not {architecture!r}; pass a matching one.")
    return load_file(weights), config


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Save (N, C, H, W) images in [0, 1] as one PNG grid."""
    from PIL import Image

    images = images.detach().float().clamp(0, 1).cpu()
    n, c, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    grid = torch.ones(c, rows * (h + 2) + 2, nrow * (w + 2) + 2)
    for i, im in enumerate(images):
        r, col = divmod(i, nrow)
        grid[:, 2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + col * (w + 2) : 2 + col * (w + 2) + w] = im
    array = (grid.permute(1, 2, 0).squeeze(-1).numpy() * 255).astype("uint8")
    Image.fromarray(array).resize((array.shape[1] * 4, array.shape[0] * 4), Image.NEAREST).save(path)
    return Path(path)
