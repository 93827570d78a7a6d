"""Pictures training runs write: loss curves, per-epoch panels and image grids."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402


def plot_loss_curves(
    log_history: list[dict], path: str | Path, title: str = "loss", ylabel: str = "cross-entropy (nats/token)"
) -> Path:
    """Plot training and evaluation loss against the optimizer step into a PNG."""
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    if not train:  # runs shorter than one logging interval: the per-epoch means
        train = [(e["step"], e["train_loss"]) for e in log_history if "train_loss" in e and "step" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if train:
        ax.plot(*zip(*train), label="train loss", lw=1.2)
    if evals:
        ax.plot(*zip(*evals), "o-", label="validation loss", lw=1.5)
    ax.set(xlabel="optimizer step", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_history(history: list[dict], path: str | Path, title: str) -> Path | None:
    """One panel per logged number against the epoch (losses, accuracies, sample scores)."""
    keys = [
        k
        for k in (history[0] if history else {})
        if k not in ("epoch", "step") and isinstance(history[0][k], (int, float))
    ]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), dpi=100, squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot([h["epoch"] for h in history], [h[key] for h in history], "o-", ms=3)
        ax.set(title=key, xlabel="epoch")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def image_grid(images, nrow: int = 8, scale: int = 4) -> np.ndarray:
    """(N, C, H, W) images in [0, 1] (a tensor or an array) -> one uint8 picture, (H', W') or (H', W', 3),
    with a 2-pixel border between images, enlarged `scale` times with nearest-neighbour pixels."""
    images = np.clip(
        np.asarray(images.detach().float().cpu() if hasattr(images, "detach") else images, dtype=np.float32),
        0,
        1,
    )
    n, c, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    grid = np.ones((c, rows * (h + 2) + 2, nrow * (w + 2) + 2), dtype=np.float32)
    for i, im in enumerate(images):
        r, col = divmod(i, nrow)
        grid[:, 2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + col * (w + 2) : 2 + col * (w + 2) + w] = im
    grid = np.kron(grid, np.ones((1, scale, scale), dtype=np.float32))
    picture = (grid.transpose(1, 2, 0) * 255).round().astype(np.uint8)
    return picture[..., 0] if c == 1 else picture


def save_grid(images, path: str | Path, nrow: int = 8) -> Path:
    """Save (N, C, H, W) images in [0, 1] as one PNG grid."""
    from PIL import Image

    Image.fromarray(image_grid(images, nrow)).save(path)
    return Path(path)
