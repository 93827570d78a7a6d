"""Resume from the newest checkpoint that is really complete, and save one when a Trainer run is interrupted.

A `kill -9` while Trainer writes `checkpoint-N` leaves a folder that looks like a checkpoint but
cannot be loaded (a 0-byte optimizer.pt, no trainer_state.json). Trainer writes trainer_state.json
last, so a checkpoint counts as complete only when that file parses and every weight, optimizer and
RNG file in it is whole; anything else is moved aside (never deleted) and the run resumes from the
newest complete one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, TrainOutput

from llmkit import record
from llmkit.errors import UserError
from llmkit.interrupt import GracefulInterrupt, TrainingInterrupted
from llmkit.log import get_logger

logger = get_logger(__name__)


def checkpoint_problem(folder: str | Path) -> str | None:
    """Why a Trainer checkpoint folder cannot be resumed from, or None when it is complete (llmkit.record's rule)."""
    return record.checkpoint_problem(folder, "trainer_state.json")


def find_resume_checkpoint(output_dir: str | Path, explicit: str | None = None) -> str | None:
    """The checkpoint to resume from: `explicit` if given (and complete), else the newest complete one in output_dir.

    Incomplete checkpoints newer than the one chosen are renamed `incomplete-checkpoint-N` and reported,
    so Trainer never counts them again and nothing is lost.
    """
    if explicit:
        problem = checkpoint_problem(explicit) if Path(explicit).is_dir() else "it is not a folder"
        if problem:
            raise UserError(
                f"cannot resume from {explicit}: {problem}; pick another checkpoint or drop --resume_from_checkpoint."
            )
        return str(explicit)
    out = Path(output_dir)
    if not out.is_dir():
        return None
    numbered = [
        p for p in out.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.is_dir() and p.name.split("-")[-1].isdigit()
    ]
    for folder in sorted(numbered, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        problem = checkpoint_problem(folder)
        if problem is None:
            return str(folder)
        if os.environ.get("LOCAL_RANK", "0") == "0":  # one process per machine tidies up
            aside = folder.with_name(f"incomplete-{folder.name}")
            with contextlib.suppress(OSError):  # another machine sharing the disk moved it first
                folder.rename(aside)
            logger.warning(f"skipping {folder} ({problem}); moved it to {aside.name}")
    return None


class _StopAndSave(TrainerCallback):
    """Turns an interrupt request into 'save a checkpoint at this step, then stop', agreed by every rank."""

    def __init__(self, interrupt: GracefulInterrupt):
        self.interrupt = interrupt
        self.stopped_at: int | None = None
        self._group = None
        self._flag = None
        self._pending = None

    def on_train_begin(self, args, state, control, **kwargs):
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # A CPU (gloo) group: reading the agreed flag never waits on the GPU.
            self._group = dist.new_group(backend="gloo")
            self._flag = torch.zeros(1, dtype=torch.int32)

    def _requested_everywhere(self) -> bool:
        if self._group is None:
            return self.interrupt.requested
        # Ranks may see the signal at different steps; they act on the flags reduced one step earlier,
        # so all of them stop at the same step. The reduction runs while the next step computes.
        agreed = False
        if self._pending is not None:
            self._pending.wait()
            agreed = bool(self._flag.item())
        self._flag.fill_(int(self.interrupt.requested))
        self._pending = dist.all_reduce(self._flag, op=dist.ReduceOp.MAX, group=self._group, async_op=True)
        return agreed

    def on_step_end(self, args, state, control, **kwargs):
        if self.stopped_at is None and self._requested_everywhere():
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self._pending is not None:
            self._pending.wait()
            self._pending = None


def train_resumable(trainer: Trainer, resume: str | None) -> TrainOutput:
    """`trainer.train(resume_from_checkpoint=resume)`; the first Ctrl-C saves a checkpoint at the current step
    and raises TrainingInterrupted (exit 130 under run_cli), a second Ctrl-C stops at once."""
    with GracefulInterrupt() as interrupt:
        stop = _StopAndSave(interrupt)
        trainer.add_callback(stop)
        try:
            output = trainer.train(resume_from_checkpoint=resume)
        finally:
            trainer.remove_callback(stop)
    if stop.stopped_at is not None:
        folder = Path(trainer.args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{stop.stopped_at}"
        raise TrainingInterrupted(f"saved {folder}; run the same command to resume from it.")
    return output
