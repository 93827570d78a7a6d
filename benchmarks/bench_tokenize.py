"""Tokenize once vs re-tokenize every run: throughput, bytes per token, peak RAM, time to the first step.

    python benchmarks/bench_tokenize.py                    # the full measurement: a 200 MB corpus
    python benchmarks/bench_tokenize.py --corpus_mb 5      # a quick look while developing

The corpus is built at run time in a temporary folder (never committed): the built-in corpus, then
the Python sources and text files installed on this machine, until it reaches --corpus_mb.
Both paths use the same saved BPE tokenizer (trained once here), so neither pays for BPE training.

Measured, interleaved over --repeats rounds so a noisy machine hits every variant alike:
- tokenization throughput: `llmkit tokenize`'s tokenize-and-pack step on the loaded corpus with
  1 process and with --num_proc 2 (TOKENIZERS_PARALLELISM=false, so one process uses one core);
- the whole `llmkit tokenize` command: wall time, bytes per token on disk, peak RAM (all processes);
- time from command start to the first training step: `pretrain_gpt2.py` re-tokenizing the text
  (the old path) vs `pretrain_gpt2.py --tokenized_dataset` (the new one), each in a fresh process
  with an empty datasets cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIRST_STEP = """
import os, sys, time
from transformers import TrainerCallback
from llmkit.arguments import parse_args
from llmkit.data import DataArguments
from llmkit.lm import ModelArguments, PretrainingArguments, pretrain

class FirstStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        open(os.environ["FIRST_STEP_FILE"], "w").write(str(time.time()))
        os._exit(0)  # only the start-up is measured

pretrain(*parse_args((DataArguments, ModelArguments, PretrainingArguments), sys.argv[1:]), callbacks=[FirstStep()])
"""


def build_corpus(folder: Path, megabytes: float, files: int = 8) -> dict:
    """Write about `megabytes` of real text into `files` .txt files; say where it came from."""
    from llmkit.data import builtin_texts

    target = int(megabytes * 1e6)
    sources = {"builtin": 0, "installed .py/.txt/.md/.rst files": 0}
    chunks, size = [], 0

    def add(text: str, source: str) -> None:
        nonlocal size
        chunks.append(text)
        size += len(text.encode("utf-8"))
        sources[source] += 1

    for text in builtin_texts():
        add(text, "builtin")
    roots = {
        Path(sysconfig.get_paths()["stdlib"]),
        Path(sysconfig.get_paths()["purelib"]),
        Path("/usr/share/doc"),
    }
    passes = 0
    while size < target:
        passes += 1
        for root in sorted(roots):
            for path in sorted(root.rglob("*")):
                if size >= target:
                    break
                if path.suffix not in (".py", ".txt", ".md", ".rst") or not path.is_file():
                    continue
                try:
                    text = path.read_text(encoding="utf-8")
                except (UnicodeDecodeError, OSError):
                    continue
                if text.strip():
                    add(text, "installed .py/.txt/.md/.rst files")
    folder.mkdir(parents=True, exist_ok=True)
    per_file = max(1, len(chunks) // files)
    for i in range(files):
        part = chunks[i * per_file : (i + 1) * per_file if i < files - 1 else None]
        (folder / f"part{i}.txt").write_text("\n\n".join(part), encoding="utf-8")
    return {
        "bytes": sum(p.stat().st_size for p in folder.glob("*.txt")),
        "documents": sources,
        "passes": passes,
    }


def run_measured(cmd: list[str], env: dict) -> tuple[float, int, subprocess.CompletedProcess]:
    """Run a command; return (wall seconds, peak memory of it and its children together, result).

    Memory is PSS (proportional set size): pages that forked workers share with their parent are
    split between them rather than counted once per process, as summing RSS would.
    """
    start = time.time()
    # Output goes to files, not pipes: a pipe nobody reads while we poll fills up and blocks the command.
    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
        proc = psutil.Popen(cmd, env=env, stdout=out_file, stderr=err_file, text=True, cwd=REPO)
        peak = 0
        while proc.poll() is None:
            try:
                tree = [proc, *proc.children(recursive=True)]
                peak = max(peak, sum(_pss(p) for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.25)
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return time.time() - start, peak, result


def _pss(proc: psutil.Process) -> int:
    try:
        return proc.memory_full_info().pss
    except (AttributeError, psutil.AccessDenied):
        return proc.memory_info().rss


def tokenize_throughput(corpus: Path, tokenizer_dir: Path, work: Path, num_proc: int) -> dict:
    """Time the tokenize-and-pack step of `llmkit tokenize` alone, on an already loaded corpus."""
    from llmkit.data import DataArguments, load_corpus
    from llmkit.data.tokenized import _pack_split, narrowest_dtype
    from llmkit.data.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(str(tokenizer_dir))
    train = load_corpus(DataArguments(train_files=[str(corpus)]))["train"]
    run_dir = Path(tempfile.mkdtemp(dir=work))
    started = time.perf_counter()
    _, counts = _pack_split(
        train, "train", tokenizer, 128, narrowest_dtype(len(tokenizer)), num_proc, run_dir
    )
    seconds = time.perf_counter() - started
    shutil.rmtree(run_dir)
    return {
        "num_proc": num_proc,
        "seconds": round(seconds, 2),
        "tokens": counts["tokens"],
        "tokens_per_second": round(counts["tokens"] / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus_mb", type=float, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/tokenize.json"))
    parser.add_argument(
        "--workdir", default=None, help="where the corpus and outputs go (default: a temporary folder)"
    )
    parser.add_argument(
        "--skip_throughput", action="store_true", help="skip the 1- vs 2-process tokenize timing"
    )
    parser.add_argument(
        "--command_procs", type=int, nargs="*", default=[1, 2], help="--num_proc values for the whole command"
    )
    args = parser.parse_args()

    os.environ.update(TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-tokenize-"))
    os.environ["HF_DATASETS_CACHE"] = str(work / "hf-cache")  # fresh: nothing is reused from earlier runs
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        corpus = work / "corpus"
        info = build_corpus(corpus, args.corpus_mb)
        print(f"corpus: {info['bytes'] / 1e6:.1f} MB in {corpus} ({info})", flush=True)

        from llmkit.data import builtin_texts, train_bpe_tokenizer

        tokenizer_dir = work / "tokenizer"
        train_bpe_tokenizer(builtin_texts(), 8192).save_pretrained(tokenizer_dir)
        load = {"before": os.getloadavg()}

        throughput = {1: [], 2: []}
        for _ in range(0 if args.skip_throughput else args.repeats):
            for num_proc in (1, 2):
                throughput[num_proc].append(tokenize_throughput(corpus, tokenizer_dir, work, num_proc))
                print(throughput[num_proc][-1], flush=True)

        commands, first_step = {1: [], 2: []}, {"old": [], "new": []}
        tokenized = work / "tokenized"
        model = [
            "--preset",
            "tiny",
            "--per_device_train_batch_size",
            "8",
            "--max_steps",
            "5",
            "--disable_tqdm",
            "true",
        ]
        script = work / "first_step.py"
        script.write_text(FIRST_STEP)
        for r in range(args.repeats):
            for num_proc in args.command_procs:
                out = work / f"tok-{num_proc}-{r}"
                shutil.rmtree(env["HF_DATASETS_CACHE"], ignore_errors=True)
                seconds, peak, _ = run_measured(
                    [
                        sys.executable,
                        "-m",
                        "llmkit.cli",
                        "tokenize",
                        "--train_files",
                        str(corpus),
                        "--tokenizer_name",
                        str(tokenizer_dir),
                        "--block_size",
                        "128",
                        "--num_proc",
                        str(num_proc),
                        "--output_dir",
                        str(out),
                    ],
                    env,
                )
                meta = json.loads((out / "llmkit_tokenized.json").read_text())
                arrow = sum(p.stat().st_size for p in (out / "train").glob("*.arrow"))
                commands[num_proc].append(
                    {
                        "seconds": round(seconds, 1),
                        "peak_pss_mb": round(peak / 1e6),
                        "bytes_per_token": round(arrow / meta["splits"]["train"]["block_tokens"], 4),
                        "train_tokens": meta["splits"]["train"]["tokens"],
                        "dtype": meta["dtype"],
                    }
                )
                print(f"tokenize --num_proc {num_proc}: {commands[num_proc][-1]}", flush=True)
                if not tokenized.exists():
                    out.rename(tokenized)
                else:
                    shutil.rmtree(out)
            for path, data in (
                ("old", ["--train_files", str(corpus), "--tokenizer_name", str(tokenizer_dir)]),
                ("new", ["--tokenized_dataset", str(tokenized)]),
            ):
                shutil.rmtree(env["HF_DATASETS_CACHE"], ignore_errors=True)
                stamp = work / "first-step.txt"
                stamp.unlink(missing_ok=True)
                started = time.time()
                _, peak, _ = run_measured(
                    [
                        sys.executable,
                        str(script),
                        *data,
                        *model,
                        "--output_dir",
                        str(work / f"run-{path}-{r}"),
                    ],
                    {**env, "FIRST_STEP_FILE": str(stamp)},
                )
                first_step[path].append(
                    {
                        "seconds": round(float(stamp.read_text()) - started, 1),
                        "peak_pss_mb": round(peak / 1e6),
                    }
                )
                print(f"time to first step, {path} path: {first_step[path][-1]}", flush=True)
        load["after"] = os.getloadavg()

        def med(rows: list[dict], key: str) -> float | None:
            return statistics.median(r[key] for r in rows) if rows else None

        def ratio(a: float | None, b: float | None, digits: int = 2) -> float | None:
            return round(a / b, digits) if a and b else None

        summary = {
            "tokens_per_second_1_process": med(throughput[1], "tokens_per_second"),
            "tokens_per_second_2_processes": med(throughput[2], "tokens_per_second"),
            "speedup_2_processes": ratio(
                med(throughput[2], "tokens_per_second"), med(throughput[1], "tokens_per_second")
            ),
            "command_speedup_2_processes": ratio(med(commands[1], "seconds"), med(commands[2], "seconds")),
            "bytes_per_token": med(commands[1] or commands[2], "bytes_per_token"),
            "first_step_old_seconds": med(first_step["old"], "seconds"),
            "first_step_new_seconds": med(first_step["new"], "seconds"),
            "first_step_speedup": ratio(
                med(first_step["old"], "seconds"), med(first_step["new"], "seconds"), 1
            ),
        }
        result = {
            "corpus": info,
            "machine": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
            },
            "versions": _versions(),
            "load_average": load,
            "summary": summary,
            "throughput": throughput,
            "tokenize_command": commands,
            "first_step": first_step,
            "command": " ".join(sys.argv),
        }
        print(json.dumps(summary, indent=2))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def _versions() -> dict:
    import datasets
    import tokenizers
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "tokenizers": tokenizers.__version__,
    }


if __name__ == "__main__":
    main()
