"""Set-up for the classic recipes, without transformers: the shared launch checks, the seed, and an
Accelerator with the asked precision and trackers."""

from __future__ import annotations

from pathlib import Path

import torch

from llmkit.launch import check_launch, configure_threads, prepare_output_dir, resolve_precision
from llmkit.log import configure_logging


def start(args) -> Path:
    """Everything a classic recipe does before touching data or models: checks, threads, output folder, seed.

    Seeding here, before any model is built, is what makes `--seed` fix the initial weights.
    """
    from accelerate.utils import set_seed

    check_launch()
    configure_threads()
    configure_logging(getattr(args, "log_level", "passive"), getattr(args, "log_level_replica", "warning"))
    out = prepare_output_dir(args.output_dir)
    set_seed(args.seed)
    return out


def mixed_precision(precision: str) -> str:
    """accelerate's mixed_precision for `--precision` (see llmkit.launch.resolve_precision)."""
    resolved = resolve_precision(precision)
    return "no" if resolved == "fp32" else resolved


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
