"""Process set-up for the classic recipes, without transformers: launch check, threads, output folder,
seed, and an Accelerator with the asked precision and trackers."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from llmkit.errors import UserError

CPU_DDP_HINT = (
    "on a CPU-only machine use `accelerate launch --config_file recipes/accelerate/cpu-ddp.yaml ...` "
    "(or `accelerate launch --multi_gpu --num_processes N ...`) to get N real gloo ranks"
)


def check_launch() -> None:
    """Refuse a launch that asked accelerate for several processes but got one."""
    launched_by_accelerate = "ACCELERATE_MIXED_PRECISION" in os.environ
    asked_for_several = (
        "MASTER_ADDR" in os.environ
    )  # accelerate's simple launcher sets it only for >1 process
    if launched_by_accelerate and asked_for_several and "WORLD_SIZE" not in os.environ:
        raise UserError(
            f"accelerate started a single process although several were asked for; {CPU_DDP_HINT}."
        )


def configure_threads() -> None:
    """Give each CPU process its share of the cores (accelerate pins every launch to one thread)."""
    if torch.cuda.is_available():
        return
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    wanted = int(os.environ.get("LLMKIT_NUM_THREADS") or max(1, (os.cpu_count() or 1) // local_world))
    torch.set_num_threads(wanted)


def prepare_output_dir(path: str | Path) -> Path:
    """Create output_dir, failing before any work with a clear message when it cannot be written."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".llmkit-write-test-{os.getpid()}"  # per process: ranks probe the same folder at once
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(
            f"cannot write to output_dir {out} ({err.strerror}); pass a writable --output_dir."
        ) from None
    return out


def start(args) -> Path:
    """Everything a classic recipe does before touching data or models: checks, threads, output folder, seed.

    Seeding here, before any model is built, is what makes `--seed` fix the initial weights.
    """
    from accelerate.utils import set_seed

    check_launch()
    configure_threads()
    out = prepare_output_dir(args.output_dir)
    set_seed(args.seed)
    return out


def mixed_precision(precision: str) -> str:
    """accelerate's mixed_precision for `--precision` (auto: bf16 on GPUs that have it, fp16 on others, fp32 on CPU)."""
    cuda = torch.cuda.is_available()
    if precision == "auto":
        return ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "no"
    if precision == "fp16" and not cuda:
        raise UserError("--precision fp16 needs a CUDA GPU; on a CPU use fp32 or bf16.")
    return {"fp32": "no"}.get(precision, precision)


def make_accelerator(args):
    """An Accelerator on the best device, with the asked precision and experiment trackers (`--report_to`)."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    trackers = [t for t in args.report_to if t != "none"]
    return Accelerator(
        mixed_precision=mixed_precision(args.precision),
        cpu=not torch.cuda.is_available(),
        log_with=trackers or None,
        project_dir=args.output_dir,
        # Each epoch's shuffle comes from seed + epoch, so a resumed run sees the same order as an uninterrupted one.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
    )
