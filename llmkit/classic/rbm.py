"""Restricted Boltzmann machines trained with contrastive divergence, stacked into a deep belief network.

The updates are written out (no autograd): the CD-k gradient of the log-likelihood is the
difference between data-driven and model-driven correlations, <v h>_data - <v h>_model, with the
model term estimated by k steps of Gibbs sampling from the data (CD) or from a persistent chain (PCD).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RBM(nn.Module):
    """A Bernoulli-Bernoulli RBM: binary visible and hidden units (visible probabilities in [0, 1] are fine)."""

    def __init__(self, n_visible: int, n_hidden: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(n_visible, n_hidden, generator=g) * 0.01, requires_grad=False)
        self.vb = nn.Parameter(torch.zeros(n_visible), requires_grad=False)
        self.hb = nn.Parameter(torch.zeros(n_hidden), requires_grad=False)
        self.chain: torch.Tensor | None = None  # the persistent chain of PCD

    def p_h(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(v @ self.W + self.hb)

    def p_v(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h @ self.W.T + self.vb)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -v.b - sum_j softplus(v W_j + c_j); lower means more probable."""
        return -(v @ self.vb) - F.softplus(v @ self.W + self.hb).sum(dim=1)

    @torch.no_grad()
    def reconstruct(self, v: torch.Tensor) -> torch.Tensor:
        """One up-down pass with probabilities: what the RBM 'sees' in v."""
        return self.p_v(self.p_h(v))

    @torch.no_grad()
    def cd_step(
        self,
        v0: torch.Tensor,
        *,
        lr: float = 0.05,
        k: int = 1,
        persistent: bool = False,
        weight_decay: float = 1e-4,
    ) -> dict:
        """One CD-k (or PCD-k) update on a batch; returns its reconstruction error and free-energy gap."""
        ph0 = self.p_h(v0)
        h = (
            torch.bernoulli(ph0)
            if not persistent or self.chain is None or len(self.chain) != len(v0)
            else self.chain
        )
        for _ in range(k):
            vk = torch.bernoulli(self.p_v(h))
            phk = self.p_h(vk)
            h = torch.bernoulli(phk)
        if persistent:
            self.chain = h
        n = len(v0)
        self.W += lr * ((v0.T @ ph0 - vk.T @ phk) / n - weight_decay * self.W)
        self.vb += lr * (v0 - vk).mean(0)
        self.hb += lr * (ph0 - phk).mean(0)
        return {
            "reconstruction_error": float(((v0 - self.reconstruct(v0)) ** 2).mean()),
            "free_energy_gap": float(self.free_energy(v0).mean() - self.free_energy(vk).mean()),
        }

    def fit(
        self,
        data: torch.Tensor,
        *,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 0.05,
        k: int = 1,
        persistent: bool = False,
        seed: int = 0,
    ) -> list[dict]:
        """Train on rows of `data` (values in [0, 1]); returns per-epoch means of the logged quantities."""
        g = torch.Generator().manual_seed(seed)
        history = []
        for epoch in range(epochs):
            order = torch.randperm(len(data), generator=g)
            logs = []
            for i in range(0, len(data) - batch_size + 1, batch_size):
                logs.append(self.cd_step(data[order[i : i + batch_size]], lr=lr, k=k, persistent=persistent))
                if not self.finite():  # the next step's sampling raised on NaN probabilities: a traceback
                    break
            history.append(
                {
                    "epoch": epoch + 1,
                    **{key: sum(entry[key] for entry in logs) / len(logs) for key in logs[0]},
                }
            )
            if not self.finite():  # diverged: the history's NaN says so to the caller
                break
        return history

    def finite(self) -> bool:
        """Whether the weights and biases hold no NaN or inf (training has not diverged)."""
        return all(bool(torch.isfinite(p).all()) for p in (self.W, self.vb, self.hb))


class DBN(nn.Module):
    """RBMs stacked greedily (each trained on the hidden probabilities of the one below), then a classifier."""

    def __init__(self, sizes: list[int], n_classes: int, seed: int = 0):
        super().__init__()
        self.rbms = nn.ModuleList(RBM(a, b, seed + i) for i, (a, b) in enumerate(zip(sizes, sizes[1:])))
        self.sizes, self.n_classes = sizes, n_classes

    def pretrain(self, data: torch.Tensor, epochs: int = 10, **kwargs) -> list[list[dict]]:
        """Greedy layer-wise training; returns each layer's history."""
        histories = []
        for rbm in self.rbms:
            histories.append(rbm.fit(data, epochs=epochs, **kwargs))
            if not rbm.finite():  # the layers above cannot train on NaN inputs
                break
            data = rbm.p_h(data)
        return histories

    def classifier(self, pretrained: bool = True, seed: int = 0) -> nn.Sequential:
        """A sigmoid MLP of the same shape, initialised from the RBMs (or at random) plus a linear head."""
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Flatten()]
        for rbm in self.rbms:
            linear = nn.Linear(*rbm.W.shape)
            if pretrained:
                linear.weight.data = rbm.W.data.T.clone()
                linear.bias.data = rbm.hb.data.clone()
            layers += [linear, nn.Sigmoid()]
        return nn.Sequential(*layers, nn.Linear(self.sizes[-1], self.n_classes))
