"""Scores and pictures of a segmentation model: mean and per-class IoU (torchmetrics' Jaccard index, accumulated over
the whole split as the transformers examples' mean_iou does) and predicted masks drawn over validation images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from llmkit.vision.segment_data import IGNORE

TRANSPARENT = ("background", "unlabeled", "unlabelled", "other")  # classes left undrawn in the overlays


def upsampled_argmax(logits, labels) -> torch.Tensor:
    """Trainer's preprocess_logits_for_metrics: class indices at the masks' size (models predict at 1/4 of it)."""
    logits = logits[0] if isinstance(logits, tuple) else logits
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = torch.nn.functional.interpolate(
            logits, size=labels.shape[-2:], mode="bilinear", align_corners=False
        )
    return logits.argmax(dim=1)


class IoUScores:
    """compute_metrics for Trainer, batch by batch (`batch_eval_metrics`) or all at once: IoU per class and mean.

    Classes absent from both the predictions and the masks of a split are left out of the mean, as in the
    transformers examples; metrics carry `iou_<class>` for the others.
    """

    def __init__(self, names: list[str]):
        from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

        self.names = names
        self.iou = MulticlassJaccardIndex(
            len(names), average="none", ignore_index=IGNORE, zero_division=float("nan")
        )
        self.accuracy = MulticlassAccuracy(len(names), average="micro", ignore_index=IGNORE)

    def __call__(self, prediction, compute_result: bool = True) -> dict:
        """Add a batch (or a whole split); when compute_result, return the split's scores and start again."""
        pred = torch.as_tensor(prediction.predictions).cpu()
        gold = torch.as_tensor(prediction.label_ids).cpu()
        self.iou.update(pred, gold)
        self.accuracy.update(pred, gold)
        if not compute_result:
            return {}
        per_class = self.iou.compute().tolist()
        accuracy = float(self.accuracy.compute())
        self.iou.reset()
        self.accuracy.reset()
        present = [v for v in per_class if not np.isnan(v)]
        scores = {"mean_iou": float(np.mean(present)) if present else 0.0, "pixel_accuracy": accuracy}
        for name, value in zip(self.names, per_class):
            if not np.isnan(value):
                scores[f"iou_{name.replace(' ', '_')}"] = value
        return scores


def per_class_iou(metrics: dict, names: list[str], prefix: str) -> dict:
    """{class: IoU, or None where the split had none of it}, for metrics.json."""
    return {name: metrics.get(f"{prefix}_iou_{name.replace(' ', '_')}") for name in names}


def palette(n: int) -> np.ndarray:
    """n distinct RGB colours (tab10, tab20, then hsv for more classes), 0..1."""
    import matplotlib

    if n <= 10:
        return np.array([matplotlib.colormaps["tab10"](i)[:3] for i in range(n)])
    if n <= 20:
        return np.array([matplotlib.colormaps["tab20"](i % 20)[:3] for i in range(n)])
    return np.array([matplotlib.colormaps["hsv"](i / n)[:3] for i in range(n)])


def overlay(
    image: np.ndarray, classes: np.ndarray, colours: np.ndarray, hidden: set[int], *, alpha: float = 0.55
):
    """The image (H, W, 3 uint8) with each pixel of a drawn class tinted its colour."""
    out = image.astype(np.float32) / 255
    drawn = (classes != IGNORE) & ~np.isin(classes, list(hidden))
    tint = colours[np.clip(classes, 0, len(colours) - 1)]
    out[drawn] = (1 - alpha) * out[drawn] + alpha * tint[drawn]
    return out


@torch.no_grad()
def plot_overlays(model, rows: list[dict], names: list[str], path: str | Path, *, title: str) -> Path:
    """Validation images beside their true and predicted masks, drawn in class colours, with a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colours = palette(len(names))
    hidden = {i for i, n in enumerate(names) if n.lower() in TRANSPARENT}
    model.eval()
    fig, axes = plt.subplots(len(rows), 3, figsize=(7.5, 2.5 * len(rows) + 0.8), dpi=100, squeeze=False)
    for ax_row, row in zip(axes, rows):
        pixels = row["pixel_values"].unsqueeze(0).to(model.device, model.dtype)
        logits = model(pixel_values=pixels).logits
        predicted = upsampled_argmax(logits, row["labels"].unsqueeze(0))[0].cpu().numpy()
        gold = row["labels"].numpy()
        image = np.asarray(row["image"].convert("RGB").resize(gold.shape[::-1]))
        panels = [
            (image.astype(np.float32) / 255, "image"),
            (overlay(image, gold, colours, hidden), "true mask"),
        ]
        panels.append((overlay(image, predicted, colours, hidden), "predicted"))
        for ax, (picture, label) in zip(ax_row, panels):
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(label, fontsize=9)
            ax.axis("off")
    shown = [i for i in range(len(names)) if i not in hidden]
    fig.legend(
        handles=[Patch(color=colours[i], label=names[i]) for i in shown],
        loc="lower center",
        ncol=min(len(shown), 6),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(shown) // 6), 1, 0.97))
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
