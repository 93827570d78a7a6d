"""Resume from the newest checkpoint that is really complete, and save one when a Trainer run is interrupted.

A `kill -9` while Trainer writes `checkpoint-N` leaves a folder that looks like a checkpoint but
cannot be loaded (a 0-byte optimizer.pt, no trainer_state.json). Trainer writes trainer_state.json
last, so a checkpoint counts as complete only when that file parses and every weight, optimizer and
RNG file in it is whole; anything else is moved aside to `incomplete-checkpoint-N` and the run resumes
from the newest complete one. Only the newest incomplete folder is kept (to look into): older ones, and
any that a newer complete checkpoint supersedes, are deleted, so kills during saves never pile up weights.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
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
INCOMPLETE = "incomplete"  # prefix of a checkpoint folder whose save was cut short


def checkpoint_problem(folder: str | Path) -> str | None:
    """Why a Trainer checkpoint folder cannot be resumed from, or None when it is complete (llmkit.record's rule)."""
    return record.checkpoint_problem(folder, "trainer_state.json")


def find_resume_checkpoint(output_dir: str | Path, explicit: str | None = None) -> str | None:
    """The checkpoint to resume from: `explicit` if given (and complete), else the newest complete one in output_dir.

    Incomplete checkpoints newer than the one chosen are renamed `incomplete-checkpoint-N` and reported,
    so Trainer never counts them again; of those folders only the newest is kept.
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
    tidy = os.environ.get("LOCAL_RANK", "0") == "0"  # one process per machine tidies up
    chosen = None
    for folder in _numbered(out, PREFIX_CHECKPOINT_DIR):
        problem = checkpoint_problem(folder)
        if problem is None:
            chosen = str(folder)
            break
        if tidy:
            aside = folder.with_name(f"{INCOMPLETE}-{folder.name}")
            shutil.rmtree(aside, ignore_errors=True)  # an older cut save of the same step
            with contextlib.suppress(OSError):  # another machine sharing the disk moved it first
                folder.rename(aside)
            logger.warning(f"skipping {folder} ({problem}); moved it to {aside.name}")
    if tidy:
        prune_incomplete(out)
    return chosen


def refuse_to_replace_finished_run(output_dir: str | Path) -> None:
    """Refuse a new run in an output_dir that holds a finished run but no checkpoint to continue it from (trained
    with --save_strategy no, or its checkpoints deleted): it would start over and replace that model in silence."""
    out = Path(output_dir)
    if (out / "metrics.json").is_file():
        raise UserError(
            f"{out} holds a finished run (its model and metrics.json) but no checkpoint to continue it from, so this "
            f"run would start over and replace it; pass a new --output_dir, or delete {out} to start over."
        )


def prune_incomplete(output_dir: str | Path, saved_step: int | None = None) -> list[Path]:
    """Delete `incomplete-checkpoint-N` folders but the newest, and it too once checkpoint `saved_step` >= N is whole."""
    removed = []
    for i, folder in enumerate(_numbered(Path(output_dir), f"{INCOMPLETE}-{PREFIX_CHECKPOINT_DIR}")):
        if i > 0 or (saved_step is not None and _step(folder) <= saved_step):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        logger.info(
            f"deleted {len(removed)} incomplete checkpoint folder(s): {', '.join(p.name for p in removed)}"
        )
    return removed


def _step(folder: Path) -> int:
    return int(folder.name.rsplit("-", 1)[-1])


def _numbered(out: Path, prefix: str) -> list[Path]:
    """`prefix-N` folders in out, newest (highest N) first."""
    found = [p for p in out.glob(f"{prefix}-*") if p.is_dir() and p.name[len(prefix) + 1 :].isdigit()]
    return sorted(found, key=_step, reverse=True)


class _DropSupersededIncomplete(TrainerCallback):
    """Once a checkpoint is saved whole, an incomplete folder of the same or an earlier step serves nothing."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_local_process_zero:
            prune_incomplete(args.output_dir, saved_step=state.global_step)


class _NothingLeftToTrain(Exception):
    """The resumed checkpoint is at (or past) the run's last step: only the final save and reports are left."""


class _RefuseFinishedRun(TrainerCallback):
    """Resumed at its last step (the same command run again): Trainer would train one step past --max_steps
    before it checks. With the outputs written, say so; without them (killed after its last checkpoint, during
    the final save or the reports) train nothing and let the recipe write them from that checkpoint."""

    def on_train_begin(self, args, state, control, **kwargs):
        if not 0 < state.max_steps <= state.global_step:
            return
        metrics = None
        with contextlib.suppress(OSError, ValueError):
            metrics = json.loads((Path(args.output_dir) / "metrics.json").read_text())
        if isinstance(metrics, dict) and metrics.get("global_step") == state.global_step:
            raise UserError(
                f"{args.output_dir} holds this run already finished at step {state.global_step} (its model and "
                "metrics.json are written); to train further raise --max_steps or --num_train_epochs, to start "
                "over pass a new --output_dir."
            )
        raise _NothingLeftToTrain


class _LogLastStep(TrainerCallback):
    """Log the loss at the run's last step: Trainer logs only every logging_steps, so the steps after the last
    multiple were never logged and final_train_loss ("where the model ended") came from an earlier interval."""

    def on_step_end(self, args, state, control, **kwargs):
        if 0 < state.max_steps <= state.global_step and args.logging_strategy == "steps":
            control.should_log = True
        return control


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

    def on_epoch_end(self, args, state, control, **kwargs):
        # The Trainer would still score the validation set for the cut-short epoch (38 s seen on a large set)
        # while the user waits for the exit; the resumed run finishes that epoch and evaluates it.
        if self.stopped_at is not None:
            control.should_evaluate = False
            control.should_save = False  # saved at the step of the interrupt already
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self._pending is not None:
            self._pending.wait()
            self._pending = None


def _finish_without_training(trainer: Trainer, resume: str | None) -> TrainOutput:
    """What Trainer's end of training does that a run resumed at its last step still needs: the best model."""
    state = trainer.state
    if state.is_world_process_zero:
        logger.warning(
            f"{resume} is at step {state.global_step} and this run ends at step {state.max_steps}: nothing left to "
            "train; writing the final model and reports from that checkpoint."
        )
    if trainer.args.load_best_model_at_end and state.best_model_checkpoint is not None:
        trainer._load_best_model()
    trainer.is_in_train = False
    # no train_loss: this run trained no step, and Trainer's own figure would be 0.0
    return TrainOutput(state.global_step, None, {})


def check_learning_rate(checkpoint: str, learning_rate: float) -> None:
    """Refuse to resume `checkpoint` with another --learning_rate: Trainer restores the schedule's base rate from
    scheduler.pt, so the flag would be silently ignored (and recorded in metrics.json as if it had been used)."""
    path = Path(checkpoint) / "scheduler.pt"
    try:
        saved = torch.load(path, weights_only=True)["base_lrs"]
    except Exception:  # no schedule saved (or not torch's): nothing overrides the flag
        return
    if saved and not any(math.isclose(lr, learning_rate, rel_tol=1e-6) for lr in saved):
        was = f"{max(saved):g}"
        raise UserError(
            f"cannot resume {checkpoint} with --learning_rate {learning_rate:g}: the run was trained with {was}, "
            f"and the checkpoint's schedule would keep {was} (the flag would be ignored); resume with "
            f"--learning_rate {was}, or start a new run with a new --output_dir."
        )


def train_resumable(trainer: Trainer, resume: str | None) -> TrainOutput:
    """`trainer.train(resume_from_checkpoint=resume)`; the first Ctrl-C saves a checkpoint at the current step
    and raises TrainingInterrupted (exit 130 under run_cli), a second Ctrl-C stops at once."""
    if resume:
        check_learning_rate(resume, trainer.args.learning_rate)
    with GracefulInterrupt() as interrupt:
        stop = _StopAndSave(interrupt)
        added = (_RefuseFinishedRun(), stop, _DropSupersededIncomplete(), _LogLastStep())
        for callback in added:
            trainer.add_callback(callback)
        try:
            output = trainer.train(resume_from_checkpoint=resume)
        except _NothingLeftToTrain:
            output = _finish_without_training(trainer, resume)
        finally:
            for callback in added:
                trainer.remove_callback(callback)
    if stop.stopped_at is not None:
        folder = Path(trainer.args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{stop.stopped_at}"
        raise TrainingInterrupted(f"saved {folder}; run the same command to resume from it.")
    return output
