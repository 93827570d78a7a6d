"""Training image classifiers with the shared loop, augmentation, and the sample judge for generative models."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from llmkit.classic.data import load_images
from llmkit.classic.loop import ClassicArguments, fit, load_weights
from llmkit.classic.models import LeNet


def augment(x: torch.Tensor, max_shift: float = 0.1, max_degrees: float = 10.0) -> torch.Tensor:
    """Random small rotations and shifts (one affine warp per image): digits stay digits."""
    n = len(x)
    angle = (torch.rand(n, device=x.device) * 2 - 1) * math.radians(max_degrees)
    shift = (torch.rand(n, 2, device=x.device) * 2 - 1) * max_shift * 2
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.no_grad()
def accuracy(model: nn.Module, data: TensorDataset, batch: int = 512) -> float:
    """Share of correctly classified examples."""
    device = next(model.parameters()).device
    x, y = data.tensors
    correct = sum(int((model(x[i : i + batch].to(device)).argmax(-1).cpu() == y[i : i + batch]).sum()) for i in range(0, len(x), batch))
    return correct / len(x)


def train_classifier(args: ClassicArguments, model: nn.Module, train: TensorDataset, test: TensorDataset, config: dict,
                     use_augmentation: bool = False) -> dict:
    """Cross-entropy training with Adam; reports test accuracy every epoch."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=args.learning_rate)

    def step(accelerator, mods, opts, batch):
        x, y = batch
        if use_augmentation:
            x = augment(x)
        loss = F.cross_entropy(mods["model"](x), y)
        accelerator.backward(loss)
        opts["model"].step()
        opts["model"].zero_grad(set_to_none=True)
        return {"loss": loss.item()}

    return fit(args, {"model": model}, {"model": optimizer}, step, train, config,
               evaluate=lambda m: {"test_accuracy": accuracy(m["model"], test)})


def load_judge(folder: str | Path | None = None, size: int = 16) -> nn.Module:
    """A digits classifier that scores generated samples: a saved LeNet, or one trained now (about 20 s on a CPU)."""
    if folder and Path(folder, "model.safetensors").is_file():
        state, config = load_weights(folder, "lenet")
        judge = LeNet(**config["kwargs"])
        judge.load_state_dict(state)
        return judge.eval()
    torch.manual_seed(0)
    train, _, n_classes = load_images("digits", size)
    judge = LeNet(n_classes, 1, size)
    opt = torch.optim.Adam(judge.parameters(), lr=2e-3)
    x, y = train.tensors
    for _ in range(15):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = order[i : i + 64]
            loss = F.cross_entropy(judge(augment(x[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return judge.eval()


@torch.no_grad()
def sample_score(images: torch.Tensor, judge: nn.Module, threshold: float = 0.9) -> dict:
    """How recognisable and how varied samples are: share the judge classifies with >= 90% confidence,
    and the entropy of its predicted classes relative to uniform (1.0 = every class equally often)."""
    probs = judge(images.float()).softmax(-1)
    confident = float((probs.max(-1).values >= threshold).float().mean())
    counts = torch.bincount(probs.argmax(-1), minlength=probs.shape[1]).float()
    p = counts / counts.sum()
    entropy = max(0.0, float(-(p[p > 0] * p[p > 0].log()).sum() / math.log(probs.shape[1])))
    return {"confident_share": confident, "class_coverage": entropy}
