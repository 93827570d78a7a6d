"""Soak the RAG chat app: N local users through gradio_client for minutes, against the real app process.

    python benchmarks/bench_chat_soak.py --seconds 300 --users 16 --out benchmarks/results/chat-soak.json

It indexes benchmarks/rag_bench/docs into a fresh store (`llmkit rag index`), starts the real app
(`python apps/rag_chat.py --store ...`) in its own process on 127.0.0.1, and asks each question of
benchmarks/rag_bench/questions.jsonl that has a known document once, alone, to learn its reference answer. Then each user asks
its own share of the questions in a loop, as one chat whose history grows as in a browser tab
(`--turns_per_chat N` starts a new chat every N questions). An answer that differs from the question's reference answer, or whose cited
source is not the question's document, counts as a wrong-user (mixed) answer. The app's RSS is read
from /proc every few seconds. Traffic goes to 127.0.0.1 only; the run is bounded in time.

The bar: 0 errors, 0 mixed answers, and RSS after the first minute within 10% of its value at one
minute (`rss_growth_after_1min`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text") or ""
    if isinstance(content, list):
        return "".join(_text(c) for c in content)
    return str(content)


def _cited_sources(panel: str) -> list[str]:
    """The paths of the sources the sources panel marks as cited."""
    found = []
    for block in re.findall(r"<div class='source'.*?</div>", panel, flags=re.S):
        if "class='cited'" in block:
            found += re.findall(r"<code>([^<]*)</code>", block)[:1]
    return found


def _ask(client, question: str, history: list) -> tuple[str, list[str], list]:
    history, panel, _ = client.predict(question, history, 3, "hybrid", api_name="/chat")
    return _text(history[-1]["content"]), _cited_sources(panel), history


def start_app(store: Path, port: int, app: Path, log: Path) -> subprocess.Popen:
    """The real app in its own process; returns once it serves."""
    from gradio_client import Client

    # The app's own checkout first on the path, so `--app OTHER/apps/rag_chat.py` runs that checkout's llmkit.
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONPATH": str(app.parent.parent),
    }
    proc = subprocess.Popen(
        [sys.executable, str(app), "--store", str(store), "--port", str(port)],
        env=env,
        stdout=open(log, "w"),  # noqa: SIM115 (the process owns it)
        stderr=subprocess.STDOUT,
        cwd=app.parent.parent,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited early; see {log}")
        try:
            Client(f"http://127.0.0.1:{port}/", verbose=False)
            return proc
        except Exception:
            time.sleep(1)
    proc.kill()
    raise SystemExit("the app did not start within 300 s")


def soak(args: argparse.Namespace) -> dict:
    from gradio_client import Client

    lines = (HERE / "rag_bench" / "questions.jsonl").read_text().splitlines()
    # The answerable ones: each has its own answer and cited document, so a mixed-up reply shows.
    questions = [q for q in map(json.loads, lines) if q.get("doc_id")]
    work = Path(tempfile.mkdtemp(prefix="chat-soak-"))
    store = work / "store"
    docs = work / "docs"
    subprocess.run(["cp", "-r", str(HERE / "rag_bench" / "docs"), str(docs)], check=True)
    subprocess.run(
        [sys.executable, "-m", "llmkit.cli", "rag", "index", str(docs), "--store", str(store)],
        check=True,
        capture_output=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    port = _free_port()
    app = start_app(store, port, Path(args.app).resolve(), work / "app.log")
    url = f"http://127.0.0.1:{port}/"
    try:
        # Reference answers: each question asked alone, before any concurrency.
        ref_client = Client(url, verbose=False)
        reference = {}
        for q in questions:
            text, cited, _ = _ask(ref_client, q["question"], [])
            reference[q["question"]] = (text, cited)
        rss: list[tuple[float, float]] = [(0.0, _rss_mb(app.pid))]
        latencies: list[float] = []
        counts = {"requests": 0, "errors": 0, "mixed": 0, "wrong_source": 0}
        examples: list[str] = []
        lock = threading.Lock()
        start = time.monotonic()
        stop = start + args.seconds

        def user(i: int) -> None:
            rng = random.Random(i)
            mine = [q for n, q in enumerate(questions) if n % args.users == i] or questions[
                i % len(questions) :
            ][:1]
            client = Client(url, verbose=False)
            history: list = []
            turn = 0
            while time.monotonic() < stop:
                q = mine[turn % len(mine)]
                turn += 1
                if args.turns_per_chat and turn % args.turns_per_chat == 0:
                    history = []
                t0 = time.monotonic()
                try:
                    text, cited, history = _ask(client, q["question"], history)
                except Exception as err:  # a failed request is what this counts
                    with lock:
                        counts["requests"] += 1
                        counts["errors"] += 1
                        if len(examples) < 5:
                            examples.append(f"error: {type(err).__name__}: {err}"[:300])
                    history = []
                    continue
                elapsed = time.monotonic() - t0
                ref_text, ref_cited = reference[q["question"]]
                with lock:
                    counts["requests"] += 1
                    latencies.append(elapsed)
                    if text != ref_text:
                        counts["mixed"] += 1
                        if len(examples) < 5:
                            examples.append(f"mixed: {q['question']!r} got {text[:120]!r}")
                    if q["doc_id"] in " ".join(ref_cited) and q["doc_id"] not in " ".join(cited):
                        counts["wrong_source"] += 1
                if args.think_s:
                    time.sleep(rng.uniform(0, 2 * args.think_s))

        threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(args.users)]
        for t in threads:
            t.start()
        while time.monotonic() < stop + 1:
            time.sleep(args.sample_s)
            rss.append((round(time.monotonic() - start, 1), round(_rss_mb(app.pid), 1)))
        for t in threads:
            t.join(120)
        total = time.monotonic() - start
    finally:
        app.terminate()
        try:
            app.wait(30)
        except subprocess.TimeoutExpired:
            app.kill()
    after_1min = [m for t, m in rss if t >= 60]
    at_1min = after_1min[0] if after_1min else rss[-1][1]
    growth = (max(after_1min) / at_1min - 1) if after_1min else 0.0
    ordered = sorted(latencies)
    result = {
        "app": str(args.app),
        "users": args.users,
        "seconds": round(total, 1),
        **counts,
        "requests_per_s": round(counts["requests"] / total, 2),
        "latency_p50_s": round(statistics.median(ordered), 3) if ordered else None,
        "latency_p95_s": round(ordered[int(0.95 * (len(ordered) - 1))], 3) if ordered else None,
        "rss_start_mb": rss[0][1],
        "rss_at_1min_mb": at_1min,
        "rss_end_mb": rss[-1][1],
        "rss_max_mb": max(m for _, m in rss),
        "rss_growth_after_1min": round(growth, 3),
        "passes_bar": counts["errors"] == 0 and counts["mixed"] == 0 and growth <= 0.10,
        "examples": examples,
        "rss_mb_over_time": rss,
        "load_average": os.getloadavg(),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=300, help="how long the users keep asking")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--think_s", type=float, default=0.0, help="mean pause between a user's questions")
    parser.add_argument(
        "--turns_per_chat", type=int, default=0, help="start a new chat after this many questions (0: never)"
    )
    parser.add_argument("--sample_s", type=float, default=5.0, help="how often the app's RSS is read")
    parser.add_argument("--app", default=str(REPO / "apps" / "rag_chat.py"), help="the app script to run")
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args()
    result = soak(args)
    summary = {k: v for k, v in result.items() if k != "rss_mb_over_time"}
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
