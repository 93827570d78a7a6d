"""Generative baselines on small images: DCGAN (optionally conditional) with its training step, and a convolutional VAE."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Generator(nn.Module):
    """DCGAN generator: noise (+ class embedding) -> 4x4 features -> transposed convs -> size x size image in [0, 1]."""

    def __init__(
        self,
        z_dim: int = 64,
        channels: int = 1,
        size: int = 16,
        width: int = 64,
        n_classes: int | None = None,
    ):
        super().__init__()
        self.z_dim, self.size = z_dim, size
        self.label = nn.Embedding(n_classes, z_dim) if n_classes else None
        ups = {16: 2, 32: 3, 28: None}.get(size)
        if ups is None:
            raise ValueError("the DCGAN generator supports 16x16 and 32x32 images")
        self.fc = nn.Sequential(
            nn.Linear(z_dim, width * 2**ups * 16), nn.BatchNorm1d(width * 2**ups * 16), nn.ReLU()
        )
        blocks, c = [], width * 2**ups
        for i in range(ups):
            last = i == ups - 1
            blocks += [nn.ConvTranspose2d(c, channels if last else c // 2, 4, 2, 1)]
            blocks += [nn.Sigmoid()] if last else [nn.BatchNorm2d(c // 2), nn.ReLU()]
            c //= 2
        self.net = nn.Sequential(*blocks)
        self.start_channels = width * 2**ups

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.label is not None:
            z = z * self.label(labels)
        return self.net(self.fc(z).view(len(z), self.start_channels, 4, 4))


class Discriminator(nn.Module):
    """DCGAN discriminator: strided convs with LeakyReLU, a logit; the class enters as an extra image channel."""

    def __init__(self, channels: int = 1, size: int = 16, width: int = 64, n_classes: int | None = None):
        super().__init__()
        self.size = size
        self.label = nn.Embedding(n_classes, size * size) if n_classes else None
        c_in = channels + (1 if n_classes else 0)
        self.net = nn.Sequential(
            nn.Conv2d(c_in, width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * width * (size // 4) ** 2, 1),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.label is not None:
            x = torch.cat([x, self.label(labels).view(len(x), 1, self.size, self.size)], dim=1)
        return self.net(x).squeeze(1)


class VAE(nn.Module):
    """A convolutional variational autoencoder with a Gaussian latent and a Bernoulli (BCE) decoder."""

    def __init__(self, channels: int = 1, size: int = 16, latent: int = 16, width: int = 32):
        super().__init__()
        self.latent, self.size, self.channels = latent, size, channels
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.ReLU(),
            nn.Flatten(),
        )
        flat = 2 * width * (size // 4) ** 2
        self.mu, self.logvar = nn.Linear(flat, latent), nn.Linear(flat, latent)
        self.decode_fc = nn.Linear(latent, flat)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),
        )
        self.width = width

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes -> image logits."""
        return self.decoder(self.decode_fc(z).view(len(z), 2 * self.width, self.size // 4, self.size // 4))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # the reparameterisation trick
        return self.decode(z), mu, logvar

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(negative ELBO, reconstruction, KL), each summed over pixels/latents and averaged over the batch."""
        logits, mu, logvar = self(x)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        kl = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp()) / len(x)
        return rec + kl, rec, kl

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images decoded from the prior N(0, I)."""
        z = torch.randn(n, self.latent, generator=generator).to(self.mu.weight.device)
        return torch.sigmoid(self.decode(z))

    @torch.no_grad()
    def interpolate(self, a: torch.Tensor, b: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decode the straight line between the latent means of images a and b."""
        (ma, _), (mb, _) = self.encode(a[None]), self.encode(b[None])
        t = torch.linspace(0, 1, steps, device=ma.device)[:, None]
        return torch.sigmoid(self.decode(ma + t * (mb - ma)))


def gan_step(z_dim: int, label_smoothing: float = 0.1, conditional: bool = False):
    """The shared loop's step for a (conditional) DCGAN: one discriminator update, then one generator update."""

    def step(mods: dict, batch: tuple, update) -> dict:
        real, labels = batch
        labels = labels if conditional else None
        z = torch.randn(len(real), z_dim, device=real.device)
        fake = mods["generator"](z, labels)
        # Discriminator: real -> 1 - smoothing (one-sided label smoothing), fake -> 0.
        d_real, d_fake = mods["discriminator"](real, labels), mods["discriminator"](fake.detach(), labels)
        loss_d = F.binary_cross_entropy_with_logits(
            d_real, torch.full_like(d_real, 1 - label_smoothing)
        ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        update("discriminator", loss_d)
        # Generator: make the updated discriminator say 1 (the non-saturating loss).
        d_out = mods["discriminator"](fake, labels)
        loss_g = F.binary_cross_entropy_with_logits(d_out, torch.ones_like(d_out))
        update("generator", loss_g)
        return {"loss": (loss_d + loss_g).detach(), "loss_d": loss_d.detach(), "loss_g": loss_g.detach()}

    return step
