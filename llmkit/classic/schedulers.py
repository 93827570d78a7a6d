"""Noise schedulers for diffusion, in the shape diffusers uses: a config saved beside the model,
`add_noise` for training, `set_timesteps` + `step` for sampling. DDPM (ancestral, stochastic) and DDIM
(deterministic, few steps) share the same training schedule, so one trained U-Net samples with either."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from llmkit.errors import UserError

CONFIG_NAME = "scheduler_config.json"


def make_betas(num_train_timesteps: int, beta_schedule: str) -> torch.Tensor:
    """beta_t for t = 0..T-1: linear (Ho et al. 2020, rescaled to T) or cosine (Nichol & Dhariwal 2021)."""
    if beta_schedule == "linear":
        scale = 1000 / num_train_timesteps
        return torch.linspace(1e-4 * scale, 0.02 * scale, num_train_timesteps).clamp(max=0.999)
    if beta_schedule == "cosine":  # alpha-bar follows a squared cosine
        s = 0.008
        t = torch.linspace(0, num_train_timesteps, num_train_timesteps + 1) / num_train_timesteps
        alpha_bar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    raise UserError(f"unknown beta schedule {beta_schedule!r}; choose linear or cosine.")


class DDPMScheduler:
    """Ancestral sampling: each step draws x_{t-1} from q(x_{t-1} | x_t, x0_hat), x0_hat predicted from the noise."""

    default_inference_steps: int | None = None  # all T steps
    deterministic = False  # DDIM's step draws no noise

    def __init__(self, num_train_timesteps: int = 200, beta_schedule: str = "cosine"):
        if num_train_timesteps < 2:
            raise UserError(f"the number of diffusion steps must be at least 2, got {num_train_timesteps}.")
        self.config = {"num_train_timesteps": num_train_timesteps, "beta_schedule": beta_schedule}
        self.betas = make_betas(num_train_timesteps, beta_schedule)
        self.alphas_cumprod = torch.cumprod(1 - self.betas, dim=0)
        self.set_timesteps()  # the default step count (a DDIM never asks for more steps than T)

    @property
    def num_train_timesteps(self) -> int:
        return self.config["num_train_timesteps"]

    @classmethod
    def from_config(cls, config: dict) -> DDPMScheduler:
        """A scheduler of this class with another scheduler's (or a saved file's) training schedule."""
        return cls(**{k: v for k, v in config.items() if not k.startswith("_")})

    def save_config(self, folder: str | Path) -> Path:
        """Write scheduler_config.json (class name + schedule) into a model folder."""
        path = Path(folder) / CONFIG_NAME
        path.write_text(json.dumps({"_class_name": type(self).__name__, **self.config}, indent=2))
        return path

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise (the forward process in one jump)."""
        abar = self.alphas_cumprod.to(x0.device)[t].view(-1, *([1] * (x0.dim() - 1)))
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def set_timesteps(self, num_inference_steps: int | None = None) -> None:
        """Choose the timesteps sampling visits, from T-1 down to 0 (evenly spaced when fewer than T)."""
        n = num_inference_steps or self.num_train_timesteps
        if not 1 <= n <= self.num_train_timesteps:
            raise UserError(f"sampling steps must be between 1 and {self.num_train_timesteps}, got {n}.")
        self.timesteps = (
            torch.linspace(self.num_train_timesteps - 1, 0, n).round().long().unique(sorted=True).flip(0)
        )

    def _previous(self, t: int) -> int:
        later = self.timesteps[self.timesteps < t]
        return int(later[0]) if len(later) else -1

    def _abar(self, t: int, device) -> torch.Tensor:
        return self.alphas_cumprod[t].to(device) if t >= 0 else torch.tensor(1.0, device=device)

    def predict_x0(self, eps: torch.Tensor, t: int, sample: torch.Tensor) -> torch.Tensor:
        """The clean image implied by a noise prediction, clipped to the data range [-1, 1]."""
        abar = self._abar(t, sample.device)
        return ((sample - (1 - abar).sqrt() * eps) / abar.sqrt()).clamp(-1, 1)

    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """x_t -> x_prev, given the model's noise prediction at t."""
        prev = self._previous(t)
        abar, abar_prev = self._abar(t, sample.device), self._abar(prev, sample.device)
        x0 = self.predict_x0(model_output, t, sample)
        if self.deterministic:  # DDIM (eta = 0): straight along the predicted noise, no noise drawn
            return abar_prev.sqrt() * x0 + (1 - abar_prev).sqrt() * model_output
        beta = 1 - abar / abar_prev  # the beta of the whole jump t -> prev (equals beta_t when prev = t - 1)
        mean = (abar_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - abar_prev) * sample) / (1 - abar)
        if prev < 0:
            return mean
        variance = beta * (1 - abar_prev) / (1 - abar)
        noise = torch.randn(sample.shape, generator=generator).to(sample.device)
        return mean + variance.sqrt() * noise


class DDIMScheduler(DDPMScheduler):
    """Deterministic DDIM (eta = 0): jump straight from x_t to x_prev along the predicted noise, in few steps."""

    default_inference_steps = 50
    deterministic = True

    def set_timesteps(self, num_inference_steps: int | None = None) -> None:
        super().set_timesteps(
            num_inference_steps or min(self.default_inference_steps, self.num_train_timesteps)
        )


SCHEDULERS = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}


def load_scheduler(folder: str | Path, kind: str | None = None) -> DDPMScheduler:
    """The scheduler saved in a model folder; `kind` (ddpm or ddim) samples with the same schedule another way."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise UserError(f"{folder} has no {CONFIG_NAME}; pass the output_dir of the diffusion recipe.")
    config = json.loads(path.read_text())
    by_class = {cls.__name__: cls for cls in SCHEDULERS.values()}
    if kind is not None and kind not in SCHEDULERS:
        raise UserError(f"unknown sampler {kind!r}; choose {' or '.join(SCHEDULERS)}.")
    cls = SCHEDULERS[kind] if kind else by_class.get(config.get("_class_name"), DDPMScheduler)
    return cls.from_config(config)
