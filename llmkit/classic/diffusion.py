"""DDPM: a noise schedule (linear or cosine), a small UNet with a time embedding, DDPM and DDIM sampling."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class NoiseSchedule:
    """beta_t for t = 0..T-1 and the derived alpha-bar products used by training and sampling."""

    def __init__(self, steps: int = 200, kind: str = "cosine"):
        if kind == "linear":  # Ho et al. 2020, rescaled to `steps`
            betas = torch.linspace(1e-4 * 1000 / steps, 0.02 * 1000 / steps, steps).clamp(max=0.999)
        elif kind == "cosine":  # Nichol & Dhariwal 2021: alpha-bar follows a squared cosine
            s = 0.008
            t = torch.linspace(0, steps, steps + 1) / steps
            abar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
        else:
            raise ValueError(f"unknown schedule {kind!r}; choose linear or cosine")
        self.steps, self.kind = steps, kind
        self.betas = betas
        self.alpha_bar = torch.cumprod(1 - betas, dim=0)

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
        abar = self.alpha_bar.to(x0.device)[t].view(-1, 1, 1, 1)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


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
        h1 = self.down1(self.inp(x), temb)                      # size
        h2 = self.down2(F.avg_pool2d(h1, 2), temb)               # size / 2
        m = self.mid(h2, temb)
        u2 = self.up2(torch.cat([m, h2], dim=1), temb)           # skip connection at size / 2
        u1 = self.up1(torch.cat([F.interpolate(u2, scale_factor=2.0), h1], dim=1), temb)
        return self.out(u1)


def diffusion_loss(model: UNet, schedule: NoiseSchedule, x0: torch.Tensor) -> torch.Tensor:
    """The simple DDPM objective: MSE between the added noise and the predicted noise, at a random t."""
    x0 = x0 * 2 - 1  # the model works in [-1, 1]
    t = torch.randint(0, schedule.steps, (len(x0),), device=x0.device)
    noise = torch.randn_like(x0)
    return F.mse_loss(model(schedule.add_noise(x0, t, noise), t), noise)


@torch.no_grad()
def sample(model: UNet, schedule: NoiseSchedule, n: int, size: int, channels: int = 1, method: str = "ddpm",
           steps: int | None = None, generator: torch.Generator | None = None, keep: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Generate n images in [0, 1] by DDPM (ancestral, every step) or DDIM (deterministic, `steps` steps).

    Returns the images and, when keep > 0, `keep` snapshots of x_t along the way (for a picture of denoising).
    """
    device = next(model.parameters()).device
    model.eval()
    abar = schedule.alpha_bar.to(device)
    x = torch.randn(n, channels, size, size, generator=generator).to(device)
    if method == "ddpm":
        times = list(range(schedule.steps - 1, -1, -1))
    elif method == "ddim":
        times = torch.linspace(schedule.steps - 1, 0, steps or 50).long().tolist()
    else:
        raise ValueError(f"unknown sampler {method!r}; choose ddpm or ddim")
    snapshots, every = [], max(1, len(times) // keep) if keep else 0
    for i, t in enumerate(times):
        eps = model(x, torch.full((n,), t, device=device, dtype=torch.long))
        x0 = ((x - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()).clamp(-1, 1)
        if method == "ddpm":
            prev = abar[t - 1] if t > 0 else torch.tensor(1.0, device=device)
            beta = schedule.betas.to(device)[t]
            mean = (prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - prev) * x) / (1 - abar[t])
            var = beta * (1 - prev) / (1 - abar[t])
            x = mean + (var.sqrt() * torch.randn(x.shape, generator=generator).to(device) if t > 0 else 0)
        else:  # DDIM, eta = 0: jump straight to the previous kept timestep
            t_prev = times[i + 1] if i + 1 < len(times) else -1
            prev = abar[t_prev] if t_prev >= 0 else torch.tensor(1.0, device=device)
            x = prev.sqrt() * x0 + (1 - prev).sqrt() * eps
        if every and (i % every == 0 or i == len(times) - 1):
            snapshots.append(((x.clamp(-1, 1) + 1) / 2).cpu())
    return ((x.clamp(-1, 1) + 1) / 2).cpu(), snapshots
