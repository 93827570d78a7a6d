"""Checkpoints of the classic loop: written to a temporary folder and renamed, so a folder named
`checkpoint-N` is always whole; on resume, damaged ones (a kill, a full disk, a copy cut short) are
skipped with a message, newest complete one first."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

from llmkit import record
from llmkit.errors import UserError
from llmkit.log import get_logger

logger = get_logger(__name__)

PREFIX = "checkpoint-"
STATE = "history.json"  # the loop's own state: epoch, position in the epoch, logged history


def checkpoint_problem(folder: Path) -> str | None:
    """Why a classic checkpoint cannot be resumed from, or None when it is complete (llmkit.record's one rule)."""
    return record.checkpoint_problem(folder, STATE)


def numbered(folder: Path) -> list[Path]:
    """`checkpoint-N` folders, oldest first."""
    found = [p for p in folder.glob(f"{PREFIX}*") if p.is_dir() and p.name[len(PREFIX) :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def newest_complete(folder: Path, announce: bool = True) -> tuple[Path, dict] | None:
    """(folder, state) of the newest complete checkpoint; damaged newer ones are named and skipped."""
    for ckpt in reversed(numbered(folder)):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            return ckpt, json.loads((ckpt / STATE).read_text())
        if announce:
            logger.warning(f"skipping {ckpt} ({problem}); resuming from an older checkpoint")
    return None


def temporary_folder(folder: Path, step: int) -> Path:
    """A fresh folder to write checkpoint `step` into before it gets its real name."""
    tmp = folder / f".tmp-{PREFIX}{step}"
    shutil.rmtree(tmp, ignore_errors=True)  # left over from a save that was killed
    return tmp


def publish(tmp: Path, state: dict, keep: int) -> Path:
    """Write the state file last, rename the folder into place, and delete all but the newest `keep`."""
    (tmp / STATE).write_text(json.dumps(state))
    final = tmp.with_name(tmp.name.removeprefix(".tmp-"))
    if final.exists():  # a damaged checkpoint of the same step from an earlier, killed run
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in numbered(final.parent)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def learning_rates(opts: dict) -> list[float]:
    """Every parameter group's learning rate, in order: what a checkpoint's optimizer state replaces."""
    return [group["lr"] for opt in opts.values() for group in opt.param_groups]


def refuse_changed_rate(folder: Path, asked: list[float], saved: list[float]) -> None:
    """Loading a checkpoint's optimizer state restores its learning rate: another --learning_rate on resume was
    silently ignored (and written in config.json as if it had been used)."""
    changed = [(a, s) for a, s in zip(asked, saved) if not math.isclose(a, s, rel_tol=1e-6)]
    if changed:
        was, now = changed[0][1], changed[0][0]
        raise UserError(
            f"cannot resume {folder} with --learning_rate {now:g}: the run was trained with {was:g}, and the "
            f"checkpoint's optimizer would keep {was:g} (the flag would be ignored); resume with --learning_rate "
            f"{was:g}, or start a new run with a new --output_dir."
        )


def refuse_changed_batch(folder: Path, state: dict, shape: list[int]) -> None:
    """A checkpoint saved mid-epoch (Ctrl-C) resumes by skipping the batches it trained: with another batch size
    or number of processes the skip covered other examples, and part of the epoch was repeated or never seen."""
    saved = state.get("batch_shape")
    if not state["batch"] or saved is None or saved == shape:
        return
    raise UserError(
        f"cannot resume {folder} with {shape[0]} examples per batch x {shape[1]} process(es): it was saved in the "
        f"middle of epoch {state['epoch'] + 1} with {saved[0]} x {saved[1]}, and the rest of that epoch would skip "
        f"or repeat examples; resume with --per_device_train_batch_size {saved[0]} on {saved[1]} process(es) "
        "(another batch size can follow from the next epoch's checkpoint), or use a new --output_dir."
    )


def data_fingerprint(train) -> dict:
    """The training set in a few numbers (its size and each tensor's sum): what a checkpoint was trained on."""
    tensors = getattr(train, "tensors", ())
    return {"examples": len(train), "sums": [float(t.double().sum()) for t in tensors]}


def refuse_other_data(folder: Path, state: dict, data: dict) -> None:
    """A checkpoint resumed on another training set (another --dataset, text file or split) went on training the
    model on the new data, in silence, with the first epochs' figures from the old one in metrics.json."""
    saved = state.get("data")
    if saved is None or (
        saved["examples"] == data["examples"]
        and len(saved["sums"]) == len(data["sums"])
        and all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) for a, b in zip(saved["sums"], data["sums"]))
    ):
        return
    raise UserError(
        f"cannot resume {folder}: it was trained on other data ({saved['examples']} training examples, this run "
        f"has {data['examples']}{'' if saved['examples'] != data['examples'] else ' with other values'}); resume "
        "with the data flags (and --seed) the run started with, or use a new --output_dir."
    )


def refuse_other_config(folder: Path, state: dict, config: dict) -> None:
    """A checkpoint resumed as another model whose weights still load (a diffusion model's noise schedule, a
    character model's alphabet of the same size) went on training under the new settings, in silence."""
    saved = state.get("config")
    if saved is None or saved == config:
        return
    changed = [
        f"{k} {saved.get(k)} -> {config.get(k)}" for k in {**saved, **config} if saved.get(k) != config.get(k)
    ]
    raise UserError(
        f"cannot resume {folder}: it was trained with other settings ({'; '.join(changed)[:300]}); resume with the "
        "flags the run started with, or use a new --output_dir."
    )
