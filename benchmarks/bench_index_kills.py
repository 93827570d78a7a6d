"""Kill `llmkit rag index` with SIGKILL at random moments and check the store each time.

    python benchmarks/bench_index_kills.py --kills 20 --out benchmarks/results/index-kills.json

A folder of 50 documents (benchmarks/rag_bench/docs, five variants of each) is indexed into a store
by the real command in its own process, killed after a random delay drawn between half of a full
run's time (measured first; before that the model is still loading) and all of it, so that kills land
while the store is first created, while it is indexing and while it saves. After each kill the
store must be consistent, read with SQLite alone: `PRAGMA integrity_check` is ok, every document has
its chunks, every chunk its full-text row, and a store without a manifest is at most a half-made one
that llmkit starts over. The next run continues from what the killed one left (a fresh store once one is complete); every
--rerun_every kills a run is left to finish and must end with all 50 documents, and the next kill
starts from a fresh store. Not a test: it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
N_DOCS = 50


def make_docs(folder: Path) -> None:
    """50 documents of about 5 chunks: three benchmark documents each, in turn (a numbered note heads each)."""
    folder.mkdir(parents=True)
    sources = sorted((HERE / "rag_bench" / "docs").iterdir())
    for i in range(N_DOCS):
        parts = [sources[(i + j) % len(sources)].read_text() for j in range(3)]
        (folder / f"{i:02d}-{sources[i % len(sources)].name}").write_text(
            f"Note {i}.\n\n" + "\n\n".join(parts)
        )


def check(store: Path) -> dict:
    """The store's state after a kill, and whether it is consistent."""
    if not store.exists() or not any(store.iterdir()):
        return {"state": "nothing written", "consistent": True}
    if not (store / "manifest.json").is_file():
        sys.path.insert(0, str(HERE.parent))
        from llmkit.rag.layout import half_made

        return {"state": "half-made (started over by the next run)", "consistent": half_made(store)}
    db = sqlite3.connect(store / "store.sqlite", timeout=30)
    try:
        ok = db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        docs = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        docs_with_chunks = db.execute("SELECT COUNT(DISTINCT doc_id) FROM chunks").fetchone()[0]
        fts = db.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0]
    finally:
        db.close()
    manifest_ok = isinstance(json.loads((store / "manifest.json").read_text()), dict)
    return {
        "state": f"{docs} documents",
        "documents": docs,
        "chunks": chunks,
        "consistent": ok and manifest_ok and docs == docs_with_chunks and chunks == fts,
    }


def run_index(docs: Path, store: Path, kill_after: float | None) -> tuple[int, float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "llmkit.cli", "rag", "index", str(docs), "--store", str(store)]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument(
        "--min_share",
        type=float,
        default=0.5,
        help="kills land between this share of a full run's time and all of it (a full run is timed first; "
        "before about half of it the model is still loading and nothing is written)",
    )
    parser.add_argument("--rerun_every", type=int, default=5, help="let a run finish after this many kills")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the records as JSON here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="index-kills-"))
    docs, store = work / "docs", work / "store"
    make_docs(docs)
    records, reruns = [], []
    try:
        code, full = run_index(docs, store, None)  # how long a whole run takes here, now
        assert code == 0 and check(store).get("documents") == N_DOCS, "a run without kills did not finish"
        shutil.rmtree(store)
        print(json.dumps({"full_run_s": round(full, 1)}), flush=True)
        for n in range(1, args.kills + 1):
            delay = rng.uniform(args.min_share * full, full)
            code, elapsed = run_index(docs, store, delay)
            record = {"kill": n, "delay_s": round(delay, 1), "exit": code, **check(store)}
            records.append(record)
            print(json.dumps(record), flush=True)
            if record.get("documents") == N_DOCS and n % args.rerun_every:
                shutil.rmtree(store)  # nothing left to interrupt: the next kill starts from a fresh store
            elif n % args.rerun_every == 0:
                code, elapsed = run_index(docs, store, None)
                full = elapsed if code == 0 else full  # the load changes: later kills follow this run's time
                final = check(store)
                reruns.append({"after_kill": n, "exit": code, "seconds": round(elapsed, 1), **final})
                print(json.dumps(reruns[-1]), flush=True)
                shutil.rmtree(store)  # the next kills start from a fresh store again
    finally:
        shutil.rmtree(work, ignore_errors=True)
    killed = [r for r in records if r["exit"] == -signal.SIGKILL]
    summary = {
        "full_run_s": round(full, 1),
        "kills": len(killed),
        "runs_that_finished_before_their_kill": len(records) - len(killed),
        "consistent_after_every_kill": all(r["consistent"] for r in records),
        "states": sorted(
            {r["state"].split(" (")[0] if "documents" not in r["state"] else "partly indexed" for r in killed}
        ),
        "reruns_completed": all(r["exit"] == 0 and r.get("documents") == N_DOCS for r in reruns),
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
