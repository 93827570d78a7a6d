"""Training image classifiers with the shared loop, augmentation, scikit-learn metrics, and the judge that
scores generative models' samples."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from llmkit.classic.arguments import ClassicArguments
from llmkit.classic.data import load_images, resize
from llmkit.classic.loop import fit
from llmkit.classic.models import LeNet
from llmkit.classic.registry import load_weights


def augment(x: torch.Tensor, max_shift: float = 0.1, max_degrees: float = 10.0) -> torch.Tensor:
    """Random small rotations and shifts (one affine warp per image): digits stay digits."""
    n = len(x)
    angle = (torch.rand(n, device=x.device) * 2 - 1) * math.radians(max_degrees)
    shift = (torch.rand(n, 2, device=x.device) * 2 - 1) * max_shift * 2
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """The model's logits for every example, computed in batches on the model's device, returned on the CPU."""
    device = next(model.parameters()).device
    logits = torch.cat([model(x[i : i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)])
    return logits


def evaluate_classifier(model: nn.Module, data: TensorDataset) -> dict:
    """Held-out cross-entropy and accuracy (scikit-learn's accuracy_score)."""
    from sklearn.metrics import accuracy_score

    x, y = data.tensors
    logits = predict(model, x)
    return {
        "loss": float(F.cross_entropy(logits, y)),
        "accuracy": float(accuracy_score(y.numpy(), logits.argmax(-1).numpy())),
    }


def save_confusion_matrix(
    model: nn.Module, data: TensorDataset, path: Path, labels: list[str] | None = None
) -> Path:
    """A PNG of scikit-learn's confusion matrix on held-out data: which classes get mistaken for which."""
    from sklearn.metrics import ConfusionMatrixDisplay

    from llmkit.plots import plt

    x, y = data.tensors
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ConfusionMatrixDisplay.from_predictions(
        y.numpy(), predict(model, x).argmax(-1).numpy(), display_labels=labels, ax=ax, colorbar=False
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def train_classifier(
    args: ClassicArguments,
    model: nn.Module,
    train: TensorDataset,
    test: TensorDataset,
    *,
    config: dict,
    use_augmentation: bool = False,
    extra: dict | None = None,
    summary: bool = True,
) -> dict:
    """Cross-entropy training with Adam; held-out loss and accuracy every epoch, a confusion matrix at the end."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=args.learning_rate)

    def step(mods, batch, update):
        x, y = batch
        loss = F.cross_entropy(mods["model"](augment(x) if use_augmentation else x), y)
        update("model", loss)
        return {"loss": loss.detach()}

    def on_epoch_end(epoch, mods, out):
        if epoch == args.num_train_epochs:
            save_confusion_matrix(mods["model"], test, out / "confusion_matrix.png", config.get("labels"))

    return fit(
        args,
        {"model": model},
        {"model": optimizer},
        step,
        train=train,
        config=config,
        evaluate=lambda m: evaluate_classifier(m["model"], test),
        on_epoch_end=on_epoch_end,
        extra=extra,
        summary=summary,
    )


def load_judge(
    folder: str | Path | None, output_dir: str | Path, args: ClassicArguments | None = None
) -> nn.Module:
    """A digits classifier that scores generated samples: a saved LeNet, or one trained now with the shared loop
    into output_dir/judge (about 20 s on a CPU; an interrupted or repeated run reuses it)."""
    for candidate in (folder, Path(output_dir) / "judge"):
        if (
            candidate
            and Path(candidate, "model.safetensors").is_file()
            and Path(candidate, "config.json").is_file()
        ):
            state, config = load_weights(candidate, "lenet")
            judge = LeNet(**config["kwargs"])
            judge.load_state_dict(state)
            return judge.eval()
    size = 16
    train, test, n_classes = load_images("digits", size)
    base = args or ClassicArguments()
    judge_args = ClassicArguments(
        output_dir=str(Path(output_dir) / "judge"),
        num_train_epochs=15,
        learning_rate=2e-3,
        per_device_train_batch_size=64,
        seed=0,
        precision=base.precision,
    )
    torch.manual_seed(0)
    judge = LeNet(n_classes, 1, size)
    kwargs = {"n_classes": n_classes, "channels": 1, "size": size}
    config = {"architecture": "lenet", "kwargs": kwargs}
    train_classifier(judge_args, judge, train, test, config=config, use_augmentation=True, summary=False)
    return judge.eval()


@torch.no_grad()
def sample_score(images: torch.Tensor, judge: nn.Module, threshold: float = 0.9) -> dict:
    """How recognisable and how varied samples are: share the judge classifies with >= 90% confidence,
    and the entropy of its predicted classes relative to uniform (1.0 = every class equally often)."""
    images = resize(images.float().cpu(), judge.size) if getattr(judge, "size", None) else images.float()
    probs = judge(images).softmax(-1)
    confident = float((probs.max(-1).values >= threshold).float().mean())
    counts = torch.bincount(probs.argmax(-1), minlength=probs.shape[1]).float()
    p = counts / counts.sum()
    entropy = max(0.0, float(-(p[p > 0] * p[p > 0].log()).sum() / math.log(probs.shape[1])))
    return {"confident_share": confident, "class_coverage": entropy}
