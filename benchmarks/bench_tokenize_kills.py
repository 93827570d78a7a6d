"""Kill `llmkit tokenize --overwrite_output_dir` with SIGKILL at random moments and check the dataset each time.

    python benchmarks/bench_tokenize_kills.py --kills 20 --out benchmarks/results/tokenize-kills.json

A small generated corpus is tokenized into one path again and again by the real command in its own
process, each run with the other block size (32 or 64 tokens), so the dataset it replaces ("old") and
the one it writes ("new") can be told apart. A full run is timed first, with the moment its temporary
folder appears (before that it only imports and reads); each run is then killed after a random delay
between just before that moment and the end of a full run, so kills land while it trains the BPE,
tokenizes, saves and swaps the folders. After each
kill the folder at the path, once the next run's recovery step (`recover_publish`, the first thing
`llmkit tokenize` does) has run, must be the old complete dataset or the new complete one, with every
block readable. Every --rerun_every kills a run is left to finish: it must exit 0, leave the new dataset
and no hidden folder beside it. Random delays almost never land in the microseconds between the two
renames of the swap, so --at_swap more runs are killed right there: run under `strace`, whose syscall
injection holds the process for 3 s just after its first rename of the path (the old dataset moved
aside), before the second. The next run must restore or finish the swap. Not a test: it takes minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
BLOCKS = (32, 64)
SWAP_HOLD_US = 3_000_000


def make_corpus(folder: Path, documents: int) -> None:
    """Numbered documents of varied words in four files."""
    folder.mkdir(parents=True)
    words = "river stone lamp orchard signal copper window meadow ledger harbour velvet thunder".split()
    docs = [
        f"Entry {i}: " + " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(20 + i % 40)) + "."
        for i in range(documents)
    ]
    for part in range(4):
        (folder / f"part{part}.txt").write_text("\n\n".join(docs[part::4]))


def identity(path: Path) -> str | None:
    """A hash of a complete dataset's blocks and block size; None when nothing complete is at `path`."""
    from llmkit.data.tokenized import load_tokenized
    from llmkit.errors import UserError

    try:
        splits, tokenizer, meta = load_tokenized(path)
    except (UserError, OSError, ValueError):
        return None
    digest = hashlib.sha256(str(meta["block_size"]).encode())
    for name in ("train", "validation"):
        column = splits[name].data.column("input_ids").combine_chunks().flatten().to_numpy()
        assert len(column) == meta["splits"][name]["block_tokens"], "blocks missing"
        digest.update(column.tobytes())
    return f"{meta['block_size']}:{digest.hexdigest()[:12]}"


def run_tokenize(
    corpus: Path, out: Path, block: int, kill_after: float | None, *, at_swap: bool = False
) -> tuple[int, float, float | None]:
    """Run the command; SIGKILL it after `kill_after` s, or (`at_swap`) the moment it moves the old dataset aside."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "llmkit.cli",
        "tokenize",
        "--train_files",
        str(corpus),
        "--vocab_size",
        "500",
        "--block_size",
        str(block),
        "--overwrite_output_dir",
        "true",
        "--output_dir",
        str(out),
    ]
    if at_swap:
        # strace holds the first rename touching the path (the old dataset moved aside) for 3 s after it is
        # done, a real process stopped between the two renames; it is killed there
        trace = [
            "-e",
            "trace=rename,renameat,renameat2",
            "-e",
            f"inject=rename,renameat,renameat2:delay_exit={SWAP_HOLD_US}:when=1",
        ]
        cmd = ["strace", "-f", "--seccomp-bpf", "-qq", "-o", os.devnull, "-P", str(out), *trace, *cmd]
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=HERE.parent
    )
    writing = None  # when the run's temporary folder appeared: the end of importing and loading
    while proc.poll() is None:
        elapsed = time.monotonic() - start
        if writing is None and any(out.parent.glob(f".{out.name}.tmp-*")):
            writing = elapsed
        aside = list(out.parent.glob(f".{out.name}.old-*")) if at_swap else []
        if kill_after is not None and elapsed >= kill_after or aside:
            pid = int(aside[0].name.rsplit("-", 1)[-1]) if aside else proc.pid  # the command, not strace
            os.kill(pid, signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.01)
    return proc.returncode, time.monotonic() - start, writing


def other_block(expected: dict, current: str) -> int:
    """The block size whose dataset is not the one at the path now, so old and new can be told apart."""
    return BLOCKS[0] if current == expected[BLOCKS[1]] else BLOCKS[1]


def on_disk(out: Path) -> str:
    """What a kill left, before any recovery."""
    hidden = sorted(p.name.split("-")[0].rsplit(".", 1)[-1] for p in out.parent.glob(f".{out.name}.*"))
    there = "dataset at the path" if out.exists() else "no dataset at the path"
    return there + (f", hidden: {'+'.join(hidden)}" if hidden else "")


def check_after(out: Path, n: int, block: int, code: int, expected: dict, current: str, recover) -> dict:
    """What the run left, what recovery did, and whether the path then holds the old or the new dataset."""
    left = on_disk(out)
    recovered = recover(out)
    found = identity(out)
    outcome = "old" if found == current else "new" if found == expected[block] else "neither"
    return {
        "run": n,
        "block_size": block,
        "exit": code,
        "left": left,
        "recovery": recovered,
        "dataset": outcome,
        "consistent": outcome in ("old", "new"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--kills", type=int, default=20, help="SIGKILLs that must land (runs that finish first do not count)"
    )
    parser.add_argument("--documents", type=int, default=1500)
    parser.add_argument(
        "--before_writing",
        type=float,
        default=0.5,
        help="kills land between this many seconds before a full run starts writing (measured) and its end",
    )
    parser.add_argument("--rerun_every", type=int, default=5, help="let a run finish after this many kills")
    parser.add_argument(
        "--at_swap",
        type=int,
        default=6,
        help="then this many runs killed the moment the old dataset is moved aside (between the two renames)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the records as JSON here")
    args = parser.parse_args()
    from functools import partial

    from llmkit.data.publish import recover_publish
    from llmkit.data.tokenized import METADATA

    recover_publish = partial(recover_publish, marker=METADATA)

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="tokenize-kills-"))
    corpus, out = work / "corpus", work / "data" / "ds"
    make_corpus(corpus, args.documents)
    records, reruns = [], []
    try:
        expected, full, writing = {}, 0.0, 0.0
        for block in BLOCKS:  # the two datasets every later run writes, and how long a whole run takes
            code, full, writing = run_tokenize(corpus, out, block, None)
            expected[block] = identity(out)
            assert code == 0 and expected[block] and writing, "a run without kills did not finish"
        print(
            json.dumps({"full_run_s": round(full, 1), "writing_from_s": writing, "datasets": expected}),
            flush=True,
        )
        current = expected[BLOCKS[-1]]
        n = 0
        while sum(r["exit"] == -signal.SIGKILL for r in records) < args.kills:
            n += 1
            block = other_block(expected, current)
            delay = rng.uniform(writing - args.before_writing, full)
            code, elapsed, _ = run_tokenize(corpus, out, block, delay)
            record = {
                "delay_s": round(delay, 2),
                **check_after(out, n, block, code, expected, current, recover_publish),
            }
            records.append(record)
            print(json.dumps(record), flush=True)
            current = identity(out) or current
            killed = sum(r["exit"] == -signal.SIGKILL for r in records)
            if code == -signal.SIGKILL and killed % args.rerun_every == 0:
                block = other_block(expected, current)
                code, elapsed, started = run_tokenize(corpus, out, block, None)
                found = identity(out)
                leftovers = [p.name for p in out.parent.iterdir() if p.name != out.name]
                reruns.append(
                    {
                        "after_kill": killed,
                        "exit": code,
                        "seconds": round(elapsed, 1),
                        "new_dataset": found == expected[block],
                        "left_beside": leftovers,
                    }
                )
                print(json.dumps(reruns[-1]), flush=True)
                if code == 0 and started is not None:  # the load changes: later kills follow this run's times
                    full, writing = elapsed, started
                current = found or current
        for _ in range(args.at_swap if shutil.which("strace") else 0):
            n += 1
            block = other_block(expected, current)
            code, elapsed, _ = run_tokenize(corpus, out, block, None, at_swap=True)
            record = check_after(out, n, block, code, expected, current, recover_publish)
            record["at_swap"] = True
            records.append(record)
            print(json.dumps(record), flush=True)
            current = identity(out) or current
    finally:
        shutil.rmtree(work, ignore_errors=True)
    killed = [r for r in records if r["exit"] == -signal.SIGKILL]
    summary = {
        "full_run_s": round(full, 1),
        "writing_from_s": round(writing, 1),
        "documents": args.documents,
        "kills": len(killed),
        "kills_at_swap": sum(r["exit"] == -signal.SIGKILL for r in records if r.get("at_swap")),
        "runs_that_finished_before_their_kill": len(records) - len(killed),
        "consistent_after_every_kill": all(r["consistent"] for r in records),
        "after_kills": {k: sum(r["dataset"] == k for r in killed) for k in ("old", "new", "neither")},
        "states_left": sorted({r["left"] for r in killed}),
        "recoveries": [r["recovery"] for r in records if r["recovery"]],
        "reruns_completed": all(r["exit"] == 0 and r["new_dataset"] and not r["left_beside"] for r in reruns),
        "reruns": reruns,
        "records": records,
        "load_average": os.getloadavg(),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "records"}, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
