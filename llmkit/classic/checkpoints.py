"""Checkpoints of the classic loop: written to a temporary folder and renamed, so a folder named
`checkpoint-N` is always whole; on resume, damaged ones (a kill, a full disk, a copy cut short) are
skipped with a message, newest complete one first."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from llmkit import record
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
