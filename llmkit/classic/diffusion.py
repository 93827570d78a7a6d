"""Diffusion models: a small U-Net with a time embedding, the training objective, and the sampling loop
(the noise schedule and the update rule live in llmkit/classic/schedulers.py)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from llmkit.classic.schedulers import DDPMScheduler


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (as in the Transformer's positions)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class TimeBlock(nn.Module):
    """Two 3x3 convs with GroupNorm and SiLU; the time embedding is added between them."""

    def __init__(self, c_in: int, c_out: int, t_dim: int):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c_in, c_out, 3, padding=1), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.norm1, self.norm2 = nn.GroupNorm(8, c_out), nn.GroupNorm(8, c_out)
        self.time = nn.Linear(t_dim, c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm1(self.conv1(x))) + self.time(t)[:, :, None, None]
        return F.silu(self.norm2(self.conv2(h))) + self.skip(x)


class UNet(nn.Module):
    """A two-level UNet (size -> size/2 -> size) that predicts the noise added to an image."""

    def __init__(self, channels: int = 1, width: int = 32):
        super().__init__()
        t_dim = 4 * width
        self.width = width
        self.time = nn.Sequential(nn.Linear(width, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.inp = nn.Conv2d(channels, width, 3, padding=1)
        self.down1, self.down2 = TimeBlock(width, width, t_dim), TimeBlock(width, 2 * width, t_dim)
        self.mid = TimeBlock(2 * width, 2 * width, t_dim)
        self.up2, self.up1 = TimeBlock(4 * width, width, t_dim), TimeBlock(2 * width, width, t_dim)
        self.out = nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time(timestep_embedding(t, self.width))
        h1 = self.down1(self.inp(x), temb)  # size
        h2 = self.down2(F.avg_pool2d(h1, 2), temb)  # size / 2
        m = self.mid(h2, temb)
        u2 = self.up2(torch.cat([m, h2], dim=1), temb)  # skip connection at size / 2
        u1 = self.up1(torch.cat([F.interpolate(u2, scale_factor=2.0), h1], dim=1), temb)
        return self.out(u1)


def diffusion_loss(model: UNet, scheduler: DDPMScheduler, x0: torch.Tensor) -> torch.Tensor:
    """The simple DDPM objective: MSE between the added noise and the predicted noise, at a random t."""
    x0 = x0 * 2 - 1  # the model works in [-1, 1]
    t = torch.randint(0, scheduler.num_train_timesteps, (len(x0),), device=x0.device)
    noise = torch.randn_like(x0)
    return F.mse_loss(model(scheduler.add_noise(x0, noise, t), t), noise)


@torch.no_grad()
def sample(
    model: UNet,
    scheduler: DDPMScheduler,
    n: int,
    *,
    size: int,
    channels: int = 1,
    steps: int | None = None,
    generator: torch.Generator | None = None,
    keep: int = 0,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Generate n images in [0, 1]: start from noise and let the scheduler step through its timesteps.

    Returns the images and, when keep > 0, about `keep` snapshots of x_t along the way (a picture of denoising).
    """
    device = next(model.parameters()).device
    model.eval()
    scheduler.set_timesteps(steps)
    x = torch.randn(n, channels, size, size, generator=generator).to(device)
    times = scheduler.timesteps.tolist()
    snapshots, every = [], max(1, len(times) // keep) if keep else 0
    for i, t in enumerate(times):
        eps = model(x, torch.full((n,), t, device=device, dtype=torch.long))
        x = scheduler.step(eps, t, x, generator)
        if every and (i % every == 0 or i == len(times) - 1):
            snapshots.append(((x.clamp(-1, 1) + 1) / 2).cpu())
    return ((x.clamp(-1, 1) + 1) / 2).cpu(), snapshots
