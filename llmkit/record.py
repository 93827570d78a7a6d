"""The run record: what every recipe leaves in its output_dir and prints at its end.

One module owns it, so every recipe means the same thing by the same word:

- files are written atomically (`write_atomic`): a kill leaves the old file or the new one, never half;
- a checkpoint folder is complete only when its state file parses and every weight, optimizer and
  RNG file in it is whole (`checkpoint_problem`), for Trainer checkpoints and the classic loop's alike;
- `metrics.json` (`write_metrics`) carries the same top-level keys in every recipe (`COMMON_KEYS`,
  listed in the README), redacted of anything token-shaped;
- `wall_time_seconds` is the whole command: from the process start when run as a command, from
  argument parsing when a recipe's `main()` is called from Python; `peak_memory_mb` is the process's
  resident high-water mark over the same span (plus the GPU's peak allocation on CUDA);
- the run ends with one summary block (`print_summary`): where the model is, its headline figures,
  how to load or serve it.

Standard library and safetensors only: the classic recipes use it without importing transformers.
"""

from __future__ import annotations

import json
import os
import re
import struct
import sys
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from llmkit.secrets import redact

# What every recipe's metrics.json holds at its top level (each recipe adds its own figures beside them).
COMMON_KEYS = {
    "recipe": "the command that made the run (`llmkit NAME`)",
    "output_dir": "where the model and its files are",
    "world_size": "processes that trained together",
    "global_step": "optimizer steps the model has had, over every run of this output_dir",
    "train_loss": "mean training loss over the optimizer steps of this run (what Trainer prints as train_loss)",
    "final_train_loss": "mean training loss of the last logged interval: where the model ended",
    "wall_time_seconds": "the whole command, start-up and evaluation included",
    "peak_memory_mb": "the highest resident memory of this process (rank 0) over the whole command, in MiB",
    "headline": "the figures the final summary leads with (test if given, else validation)",
}

_clock: dict[str, float] = {}


def start_clock(at: float | None = None) -> None:
    """Start the run's wall clock (`at`: an earlier time.time(), e.g. the process start)."""
    _clock["started"] = time.time() if at is None else at


def start_command_clock() -> None:
    """Start the clock at this process's start, so wall_time_seconds counts imports and start-up too."""
    try:
        import psutil  # a dependency of accelerate, so always there with llmkit

        start_clock(psutil.Process().create_time())
    except Exception:  # no process table to read: the clock starts now instead
        start_clock()
    _clock["command"] = 1.0


def stop_command_clock() -> None:
    """Forget the command's clock (a Python caller running several recipes times each from its parsing)."""
    _clock.pop("command", None)


def start_run_clock() -> None:
    """Start the clock at argument parsing, unless the running command already started it at the process start."""
    if "command" not in _clock:
        start_clock()


def wall_seconds() -> float:
    """Seconds since the clock started (0 if it never did)."""
    return round(time.time() - _clock["started"], 1) if "started" in _clock else 0.0


def peak_memory() -> dict[str, float]:
    """This process's peak resident memory in MiB, and the GPU's peak allocation when torch used CUDA."""
    peaks = {"peak_memory_mb": round(_peak_rss_bytes() / 2**20, 1)}
    torch = sys.modules.get("torch")  # never imported here: the classic recipes may run without CUDA's cost
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        peaks["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peaks


def _peak_rss_bytes() -> int:
    # Linux: VmHWM belongs to this program; getrusage's figure survives exec, so a worker started by a
    # large launcher would report the launcher's size.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return psutil.Process().memory_info().peak_wset
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


TEMPORARY = re.compile(r"\.(.+)\.tmp-\d+")  # the name write_atomic gives a file it is writing


def write_atomic(path: str | Path, data: str | bytes | Callable[[Path], object]) -> None:
    """Write a file under a temporary name, flush it to disk and rename it: readers see the old file or the new one.

    `data` is the content, or a function that writes the file at the path it is given (`faiss.write_index`).
    The temporary file is `.NAME.tmp-PID` beside the target (`TEMPORARY`), so two processes never share one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if callable(data):
        data(tmp)
    else:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    with open(tmp, "rb") as f:
        os.fsync(
            f.fileno()
        )  # the rename must not reach the disk before the data (a power cut, not only a kill)
    os.replace(tmp, path)


def write_metrics(output_dir: str | Path, recipe: str, metrics: dict) -> dict:
    """Write metrics.json (the common keys first, redacted, atomically) and return what was written."""
    record = {
        "recipe": recipe,
        "output_dir": str(output_dir),
        "world_size": metrics.get("world_size", 1),
        "wall_time_seconds": wall_seconds(),
        **peak_memory(),
        **metrics,
    }
    missing = [k for k in COMMON_KEYS if k not in record]
    if missing:  # a recipe's bug, not a user's mistake
        raise ValueError(f"metrics.json of {recipe} lacks {missing}")
    record = redact(record)
    write_atomic(Path(output_dir) / "metrics.json", json.dumps(record, indent=2, default=str) + "\n")
    return record


# What a run writes about its final model, after saving it: each describes the model beside it.
REPORTS = ("metrics.json", "samples.txt", "loss_curve.png")


def clear_reports(output_dir: str | Path, names: Iterable[str] = REPORTS) -> None:
    """Delete the reports of the model about to be replaced: a kill during or after its save must not leave an
    earlier run's metrics.json (its step, loss, scores) beside the new weights."""
    for name in names:
        (Path(output_dir) / name).unlink(missing_ok=True)


def headline(metrics: dict, names: Iterable[str]) -> dict:
    """The headline figures: each name's test_ value when the run was scored on a test set, else eval_."""
    picked = {}
    for name in names:
        for prefix in ("test_", "eval_", ""):
            if isinstance(metrics.get(prefix + name), (int, float)):
                picked[prefix + name] = metrics[prefix + name]
                break
    return picked


def print_summary(metrics: dict, *, title: str, use: Iterable[str], notes: Iterable[str] = ()) -> str:
    """Print the run's closing block (where the model is, its headline figures, how to use it) and return it."""
    lines = [f"== {title} ==", f"saved to   {Path(metrics['output_dir']).resolve()}"]
    figures = ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.get("headline", {}).items())
    if figures:
        lines.append(f"results    {figures}")
    if metrics.get("train_loss") is not None:
        lines.append(
            f"training   {metrics['global_step']} steps, loss {_fmt(metrics['final_train_loss'])} at the end "
            f"({_fmt(metrics['train_loss'])} averaged over this run), {metrics['world_size']} process(es), "
            f"{metrics['wall_time_seconds']:.0f} s, peak memory {metrics['peak_memory_mb']:,.0f} MiB"
        )
    elif (
        metrics.get("final_train_loss") is not None
    ):  # resumed at its last step: the model's figures, none of its own
        lines.append(
            f"training   {metrics['global_step']} steps, loss {_fmt(metrics['final_train_loss'])} at the end "
            "(none trained by this run: it resumed at the last step)"
        )
    lines += [f"note       {n}" for n in notes]
    lines += [f"use it     {u}" if i == 0 else f"           {u}" for i, u in enumerate(use)]
    text = "\n".join(lines)
    print("\n" + text, file=sys.stdout, flush=True)
    return text


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)


def checkpoint_problem(folder: str | Path, state_file: str) -> str | None:
    """Why a checkpoint folder cannot be resumed from, or None when it is complete.

    Both Trainer and the classic loop write the state file last, so it must exist and parse; every
    weight file must be whole (a safetensors header that fits the file), and every torch.save file a
    zip with its directory (written at the very end, so a cut file has none).
    """
    folder = Path(folder)
    state = folder / state_file
    if not state.is_file():
        return f"no {state_file} (the save was cut short)"
    try:
        saved = json.loads(state.read_text())
    except (ValueError, UnicodeDecodeError):
        return f"{state_file} is truncated"
    if not isinstance(saved, dict) or not isinstance(saved.get("global_step"), int):  # null, [], {} or edited
        return f"{state_file} holds no step count (it is not the state a save writes)"
    if not [*folder.glob("*.safetensors"), *folder.glob("pytorch_model*.bin")]:
        return "no model weights"
    for path in sorted(folder.iterdir()):
        problem = _file_problem(path)
        if problem:
            return f"{path.name} {problem}"
    return None


def weights_problem(folder: str | Path) -> str | None:
    """The first damaged weight file of a model folder ('model.safetensors is truncated'), or None."""
    for path in sorted(Path(folder).glob("*")):
        if path.suffix in (".safetensors", ".bin") and path.is_file() and (problem := _file_problem(path)):
            return f"{path.name} {problem}"
    return None


def _file_problem(path: Path) -> str | None:
    if path.suffix == ".safetensors":
        try:
            with path.open("rb") as f:
                (header_len,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(header_len))
        except (struct.error, ValueError, UnicodeDecodeError):
            return "has a damaged header"
        ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
        if 8 + header_len + max(ends, default=0) > path.stat().st_size:
            return "is truncated"
    elif path.suffix in (".pt", ".pth", ".bin") and (
        path.stat().st_size == 0 or not zipfile.is_zipfile(path)
    ):
        return "is empty or truncated"
    return None
