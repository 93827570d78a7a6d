"""Process set-up every recipe does first: refuse a launch that silently lost its ranks, share the CPU
cores between processes, resolve `--precision`, and make sure output_dir can be written, and is not being
trained into by another run, before any work starts.

On a machine without CUDA, `accelerate launch --num_processes 2` (and `--cpu`, and MULTI_CPU
configs) start ONE process with accelerate 1.15, with no error; `check_launch` stops that. accelerate
also pins every launched process to one thread, which halves a lone CPU process's speed;
`configure_threads` gives each process its share of the cores. Standard library and torch only, so the
classic recipes can use it without loading transformers.
"""

from __future__ import annotations

import atexit
import functools
import os
from collections.abc import Callable
from pathlib import Path

import torch

from llmkit.errors import UserError
from llmkit.folders import writable_folder


def cpu_ddp_hint() -> str:
    """How to get N real CPU ranks, naming the checked-in config where it is: a pip install has no recipes/ folder
    beside the user, but ships the config inside the package."""
    config = Path("recipes/accelerate/cpu-ddp.yaml")
    if not config.is_file():
        import llmkit.recipes

        config = Path(llmkit.recipes.__file__).parent / "accelerate" / "cpu-ddp.yaml"
    return (
        f"on a CPU-only machine use `accelerate launch --config_file {config} ...` "
        "(or `accelerate launch --multi_gpu --num_processes N ...`) to get N real gloo ranks"
    )


def check_launch() -> None:
    """Refuse a launch that asked accelerate for several processes but got one; end the process group at exit."""
    atexit.unregister(_end_process_group)  # once per process, however many runs it makes
    atexit.register(_end_process_group)
    launched_by_accelerate = "ACCELERATE_MIXED_PRECISION" in os.environ
    # accelerate's simple launcher sets it only for >1 process
    asked_for_several = "MASTER_ADDR" in os.environ
    if launched_by_accelerate and asked_for_several and "WORLD_SIZE" not in os.environ:
        raise UserError(
            f"accelerate started a single process although several were asked for; {cpu_ddp_hint()}."
        )


def _end_process_group() -> None:
    # torch asks every rank to call destroy_process_group() before it exits; a CPU rank that left its gloo group
    # to the interpreter's teardown was once seen to abort ("terminate called without an active exception")
    # after its run had finished, failing the whole launch
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def configure_threads() -> None:
    """Give each CPU process its share of the cores (accelerate pins every launch to one thread)."""
    if torch.cuda.is_available():
        return
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    wanted = int(os.environ.get("LLMKIT_NUM_THREADS") or max(1, (os.cpu_count() or 1) // local_world))
    torch.set_num_threads(wanted)


# What a training run leaves in its output_dir from its first checkpoint on; a folder with none of them is not a run's.
RUN_MARKS = (
    "metrics.json",
    "trainer_state.json",
    "training_args.bin",
    "llmkit_tokenizer.json",
    "checkpoints",
)
# Files every run writes at its end, over whatever is there.
OVERWRITTEN = ("README.md", "config.json", "model.safetensors")


def prepare_output_dir(path: str | Path) -> Path:
    """Create output_dir, failing before any work with a clear message when it cannot be written, or when
    it holds files that no training run wrote and this one would overwrite (a project's README.md, a model)."""
    out = Path(path)
    if out.is_dir():
        names = {p.name for p in out.iterdir()}
        ours = names & set(RUN_MARKS) or any(
            n.startswith(("checkpoint-", "incomplete-checkpoint-")) for n in names
        )
        theirs = sorted(names & set(OVERWRITTEN))
        if theirs and not ours:
            raise UserError(
                f"output_dir {out} holds {', '.join(theirs)} that no training run wrote (it has no checkpoint or "
                f"metrics.json), and this run would overwrite {'it' if len(theirs) == 1 else 'them'}; pass a new or "
                "empty --output_dir."
            )
    writable_folder(out, f"--output_dir {out}")  # its probe file is per process: ranks probe at once
    _hold(out)
    return out


# The output folders this process trains into, each with an open descriptor that holds its run lock.
_HELD: dict[Path, int] = {}


def _hold(out: Path) -> None:
    """Take output_dir's run lock (the main rank of a launch takes it for all), or refuse: another run holds it.

    Two runs into one folder would resume from, rotate and delete each other's checkpoints. The lock is a
    flock on the folder itself, so it leaves no file behind and dies with its process, even on kill -9.
    """
    key = out.resolve()
    if key in _HELD or os.environ.get("RANK", "0") != "0":
        return
    try:
        import fcntl
    except ImportError:  # Windows: no flock, so no guard
        return
    fd = os.open(key, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(
            f"another run is training into output_dir {out} right now; wait for it to finish, or pass "
            "another --output_dir."
        ) from None
    except OSError:  # a file system without flock on folders (some network mounts): no guard
        os.close(fd)
        return
    _HELD[key] = fd


def release_output_dirs() -> None:
    """Let other runs train into the output folders this process has been training into."""
    while _HELD:
        os.close(_HELD.popitem()[1])


def one_run_per_output_dir(main: Callable) -> Callable:
    """Wrap a recipe's main so that the output_dir lock its run takes is let go when it returns or fails."""

    @functools.wraps(main)
    def run(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        finally:
            release_output_dirs()

    return run


def resolve_precision(precision: str) -> str:
    """`--precision` as used: auto is bf16 on GPUs that have it, fp16 on older GPUs and fp32 on a CPU."""
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise UserError(f"--precision must be auto, fp32, bf16 or fp16, got {precision!r}.")
    cuda = torch.cuda.is_available()
    if precision == "auto":
        return ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    if precision == "fp16" and not cuda:
        raise UserError("--precision fp16 needs a CUDA GPU; on a CPU use fp32 or bf16.")
    return precision
