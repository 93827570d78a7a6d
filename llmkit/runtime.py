"""Process, device and precision set-up shared by every Trainer recipe.

Two traps on CPU-only machines (see shared/STACK-NOTES.md) are handled here:
- `accelerate launch --num_processes 2` silently starts ONE process without CUDA; we detect it
  and say how to get real ranks instead of training on half the data the user asked for;
- accelerate sets OMP_NUM_THREADS=1 for every launch, which halves a lone CPU process's speed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import TrainingArguments

from llmkit.errors import UserError
from llmkit.secrets import move_token_to_environment

CPU_DDP_HINT = (
    "on a CPU-only machine use `accelerate launch --config_file recipes/accelerate/cpu-ddp.yaml ...` "
    "(or `accelerate launch --multi_gpu --num_processes N ...`) to get N real gloo ranks"
)


def check_launch() -> None:
    """Refuse a launch that asked accelerate for several processes but got one."""
    launched_by_accelerate = "ACCELERATE_MIXED_PRECISION" in os.environ
    asked_for_several = "MASTER_ADDR" in os.environ  # accelerate's simple launcher sets it only for >1 process
    if launched_by_accelerate and asked_for_several and "WORLD_SIZE" not in os.environ:
        raise UserError(f"accelerate started a single process although several were asked for; {CPU_DDP_HINT}.")


def prepare_output_dir(path: str) -> Path:
    """Create output_dir, failing before any work with a clear message when it cannot be written."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".llmkit-write-test-{os.getpid()}"  # per process: ranks probe the same folder at once
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write to output_dir {out} ({err.strerror}); pass a writable --output_dir.") from None
    return out


def configure_threads() -> None:
    """Give each CPU process its share of the cores (accelerate pins every launch to one thread)."""
    if torch.cuda.is_available():
        return
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    wanted = max(1, (os.cpu_count() or 1) // local_world)
    if os.environ.get("LLMKIT_NUM_THREADS"):
        wanted = int(os.environ["LLMKIT_NUM_THREADS"])
    torch.set_num_threads(wanted)


@dataclass
class LlmkitTrainingArguments(TrainingArguments):
    """TrainingArguments that pick the device and precision the hardware supports."""

    precision: str = field(default="auto", metadata={"help": "auto (bf16 on GPUs that have it, fp16 on other GPUs, fp32 on CPU), fp32, bf16 or fp16."})
    hp_search_trials: int = field(default=0, metadata={"help": "Run an Optuna hyperparameter search of this many trials instead of one training run."})
    hp_search_space: str | None = field(default=None, metadata={"help": "A YAML search space (default: the recipe's; see llmkit/hpsearch.py)."})

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise UserError(f"--precision must be auto, fp32, bf16 or fp16, got {self.precision!r}.")
        cuda = torch.cuda.is_available()
        if not cuda:
            # Without this a MULTI_GPU accelerate config on a CPU machine trains N independent copies.
            self.use_cpu = True
        if not (self.bf16 or self.fp16):
            if self.precision == "auto" and cuda:
                self.bf16 = torch.cuda.is_bf16_supported()
                self.fp16 = not self.bf16
            else:
                self.bf16, self.fp16 = self.precision == "bf16", self.precision == "fp16"
        super().__post_init__()
        # Trainer pickles its arguments into every checkpoint: keep the token out of them.
        move_token_to_environment(self)
