"""A dataset folder that appears only when complete: work happens in a hidden temporary folder beside it
(`.NAME.tmp-PID`), renamed into place at the end, so a killed run leaves nothing that looks finished and a
re-run starts cleanly. Replacing a folder takes two renames (old aside as `.NAME.old-PID`, new in place); a run
killed between them leaves nothing at the path, so the next run first finishes that swap when the new folder is
complete, or else puts the old one back. A temporary folder of a process still running means another run is
writing the same folder: refused.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from llmkit.errors import UserError
from llmkit.log import get_logger

logger = get_logger(__name__)


def fresh_work_dir(out: Path) -> Path:
    """A hidden folder beside output_dir; temporaries a killed run left behind are removed first."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.tmp-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and _alive(int(pid)):
            raise UserError(
                f"another `llmkit tokenize` (process {pid}) is writing {out} right now; wait for it to "
                "finish, or pass another --output_dir."
            )
        shutil.rmtree(stale, ignore_errors=True)
    work = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    return work


def _alive(pid: int) -> bool:
    """Whether another process of that id runs (this process's own leftovers count as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


def publish(data: Path, out: Path) -> None:
    """Move the finished folder into place; an existing one is replaced only once the new one is whole."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(data, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(data, out)


def recover_publish(out: Path, marker: str) -> str | None:
    """Finish or undo a replacement of `out` that a killed run left half done (a new folder is complete when it
    holds `marker`); return what was done, if anything."""
    done = None
    for old in sorted(out.parent.glob(f".{out.name}.old-*")):
        pid = old.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or _alive(int(pid)):
            continue  # another run is replacing it right now
        new = out.parent / f".{out.name}.tmp-{pid}" / "data"
        if out.exists():
            done = None  # the swap was done; only deleting the old copy was cut short
        elif (new / marker).is_file():
            os.replace(new, out)
            done = (
                f"finished replacing {out} with the complete dataset a killed run left in {new.parent.name}"
            )
        else:
            os.replace(old, out)
            done = f"put back the dataset a killed run had moved aside to {old.name}"
        shutil.rmtree(old, ignore_errors=True)
        if done:
            logger.warning(done)
    return done
