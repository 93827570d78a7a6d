"""The batch shape a Trainer run trained with, kept in each checkpoint, so a resume with another one is refused.

Trainer counts a resumed run's finished epochs and the batches to skip in the epoch in progress from the
checkpoint's step and the new batch size: with another number of examples per step part of the data is trained
twice or never, after only transformers' one-line warning. The shape is written into trainer_state.json's
`stateful_callbacks` (free-form, saved with the checkpoint and last), so a checkpoint holding it is whole.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from transformers import TrainerCallback, TrainingArguments

from llmkit.errors import UserError

RECORD = "llmkit_batch"  # trainer_state.json's stateful_callbacks entry


def batch_shape(args: TrainingArguments) -> dict[str, int]:
    """Examples per optimizer step, as its three factors."""
    return {
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "processes": args.world_size,
    }


class RecordBatchShape(TrainerCallback):
    """Put this run's batch shape in the trainer state, for every checkpoint it saves."""

    def on_train_begin(self, args, state, control, **kwargs):
        state.stateful_callbacks[RECORD] = {"args": {}, "attributes": batch_shape(args)}


def check_batch_shape(checkpoint: str | None, args: TrainingArguments) -> None:
    """Refuse to resume `checkpoint` with another number of examples per step (the same number in other factors,
    a smaller batch with more accumulation, resumes fine)."""
    try:
        state = json.loads((Path(checkpoint or "") / "trainer_state.json").read_text())
        record = state["stateful_callbacks"][RECORD]["attributes"]
        now = batch_shape(args)
        saved = {k: int(record[k]) for k in now}  # trainer_state.json sorts its keys
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return  # no checkpoint, or one saved before llmkit recorded its shape
    before = math.prod(saved.values())
    if args.auto_find_batch_size or before == math.prod(now.values()):
        return
    flags = " ".join(f"--{k} {v}" for k, v in saved.items() if k != "processes")
    raise UserError(
        f"cannot resume {checkpoint} with {math.prod(now.values())} examples per step "
        f"({' x '.join(map(str, now.values()))}: batch size x accumulation x processes): it was trained with "
        f"{before} ({' x '.join(map(str, saved.values()))}), and the resumed run would count its steps in the new "
        f"size, training part of the data twice or never; resume with {flags} on {saved['processes']} "
        "process(es), or start a new run with a new --output_dir."
    )
