"""The GPU check: one command that measures llmkit's pretraining fast path on a CUDA machine.

    bash benchmarks/gpu_check.sh OUT_DIR                        # any CUDA machine, <= ~8.5 minutes (H100/H200)
    bash benchmarks/gpu_check.sh OUT_DIR --device cpu --tiny    # the same steps with tiny shapes (~3 min on CPU)

Steps, each in its own process with its own timeout; a step that fails or times out is recorded and the
next one runs:
- `bench_pretrain`: benchmarks/bench_pretrain.py as it stands (124M, bf16, context 1024, micro-batches
  12 x 8 and 32 x 3, interleaved against the compiled minimal GPT);
- `losses`: the recipe's path once per loss implementation (chunked, liger if importable, hf) on the same batches;
- `recipe`: `accelerate launch recipes/pretrain_gpt2.py --preset gpt2 --max_steps N` on a local corpus
  (the built-in one repeated, so the timed steps stay within one epoch), its metrics.json's steady tokens/s against the wall clock of the same steps, read from the time each
  logged step reaches this process;
- `preset:<name>`: each preset's default GPU micro-batch for a few steps (eager), peak memory or the OOM
  (benchmarks/gpu_preset.py).
`PYTHON=/path/to/python` picks the interpreter (default python3); the checkout needs no install (it goes on
PYTHONPATH), but torch, transformers, accelerate and datasets must be importable.
OUT_DIR gets gpu_check.json (environment, every step's status, seconds, figures or error) and logs/<step>.log.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # llmkit from this checkout, installed or not
PRESETS = ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-1b"]
# seconds per step on an H100/H200; the sum stays under the device tool's 10 minutes per command
TIMEOUTS = {"bench_pretrain": 170, "losses": 90, "recipe": 120, "preset": 30}
TINY_TIMEOUTS = {"bench_pretrain": 90, "losses": 90, "recipe": 90, "preset": 40}
AGREE = 0.05  # metrics.json's steady tokens/s within 5% of the wall clock


def environment() -> dict:
    """Versions and the device, read without importing the heavy packages into this process."""
    env = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("torch", "transformers", "accelerate", "datasets", "tokenizers", "liger-kernel", "triton"):
        try:
            env[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            env[pkg] = None
    probe = (
        "import json, torch; c = torch.cuda.is_available(); print(json.dumps({'cuda': c, "
        "'gpu': torch.cuda.get_device_name() if c else None, "
        "'gpu_memory_gib': round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if c else None, "
        "'torch_cuda': torch.version.cuda}))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    env.update(
        json.loads(proc.stdout) if proc.returncode == 0 else {"cuda": False, "error": proc.stderr[-500:]}
    )
    return env


def run_step(cmd: list[str], log: Path, timeout: float, on_line=None) -> dict:
    """Run one step's command in its own process group, output to `log`, each line timed on arrival; never raises."""
    start = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _pythonpath(), "HF_HUB_OFFLINE": "1"}
    fired = threading.Event()
    with log.open("w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a timeout kills the step's whole group (accelerate's workers too)
        )

        def kill() -> None:
            fired.set()
            with contextlib.suppress(OSError):  # already gone
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        tail: list[str] = []
        for line in proc.stdout:
            now = time.monotonic()
            f.write(line)
            tail = [*tail[-14:], line.rstrip()[-300:]]
            if on_line:
                on_line(line, now)
        rc = proc.wait()
        timer.cancel()
    seconds = round(time.monotonic() - start, 1)
    if fired.is_set():
        return {
            "status": "timeout",
            "seconds": seconds,
            "error": f"killed after {timeout:.0f} s",
            "tail": tail,
        }
    if rc != 0:
        return {"status": "failed", "seconds": seconds, "error": f"exit code {rc}", "tail": tail}
    return {"status": "ok", "seconds": seconds}


def _pythonpath() -> str:
    return os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])


def _bench_flags(tiny: bool) -> list[str]:
    return (
        ["--shapes", "small", "--steps", "2", "--warmup", "1", "--rounds", "1", "--eval_batches", "1"]
        if tiny
        else []
    )


def step_bench(out: Path, device: str, tiny: bool, timeout: float) -> dict:
    """(a) bench_pretrain.py as it stands (two rounds instead of three, to fit the time)."""
    json_out = out / "bench_pretrain.json"
    flags = _bench_flags(tiny) or ["--rounds", "2"]
    cmd = [sys.executable, "benchmarks/bench_pretrain.py", "--device", device, *flags, "--out", str(json_out)]
    log = out / "logs" / "bench_pretrain.log"
    result = run_step(cmd, log, timeout)
    if json_out.is_file():
        result["figures"] = json.loads(json_out.read_text())["runs"]
    else:  # stopped early: keep the settings it finished
        result["figures"] = rows_from_log(log)
    return result


def rows_from_log(log: Path) -> list[dict]:
    """The result rows bench_pretrain.py printed (indented JSON objects from `{` to `}` at line starts)."""
    rows, lines = [], None
    for line in log.read_text().splitlines():
        if line == "{":
            lines = [line]
        elif lines is not None:
            lines.append(line)
            if line == "}":
                row = json.loads("\n".join(lines))
                if "shape" in row:
                    rows.append(row)
                lines = None
    return rows


def step_losses(out: Path, device: str, tiny: bool, timeout: float) -> dict:
    """(b) the recipe's path with each loss implementation on the same batches (32 x 3 on a GPU)."""
    json_out = out / "losses.json"
    flags = _bench_flags(tiny) or [
        "--micro_batches",
        "32x3",
        "--rounds",
        "1",
        "--steps",
        "10",
        "--warmup",
        "5",
    ]
    cmd = [
        sys.executable,
        "benchmarks/bench_pretrain.py",
        "--device",
        device,
        "--loss_implementations",
        "chunked",
        "liger",
        "hf",
        *flags,
        "--out",
        str(json_out),
    ]
    log = out / "logs" / "losses.log"
    result = run_step(cmd, log, timeout)
    if json_out.is_file():
        data = json.loads(json_out.read_text())
        result["figures"] = {"runs": data["runs"], "skipped": data.get("variants_skipped", {})}
    else:
        result["figures"] = {"runs": rows_from_log(log)}
    return result


def step_recipe(out: Path, device: str, tiny: bool, timeout: float) -> dict:
    """(c) the recipe as a user launches it; metrics.json's steady tokens/s against the wall clock."""
    run_dir = out / "recipe-run"
    steps, every = (40, 5) if tiny else (160, 20)
    corpus = write_corpus(out / "corpus.jsonl", copies=1 if tiny else 20)
    model = [
        "--n_layer",
        "2",
        "--n_head",
        "2",
        "--n_embd",
        "64",
        "--n_positions",
        "64",
        "--vocab_size",
        "512",
    ]
    shape = (
        ["--preset", "tiny", *model, "--per_device_train_batch_size", "8"] if tiny else ["--preset", "gpt2"]
    )
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "1",
        "recipes/pretrain_gpt2.py",
        *shape,
        "--train_files",
        str(corpus),
        "--preprocessing_num_workers",
        str(min(8, os.cpu_count() or 1)),
        "--max_steps",
        str(steps),
        "--logging_steps",
        str(every),
        "--eval_steps",
        str(steps),
        "--save_steps",
        str(steps),
        "--disable_tqdm",
        "true",
        "--output_dir",
        str(run_dir),
    ]
    logged: list[float] = []  # arrival time of each training-loss log line

    def on_line(line: str, now: float) -> None:
        if line.startswith("{'loss'"):
            logged.append(now)

    result = run_step(cmd, out / "logs" / "recipe.log", timeout, on_line)
    metrics_file = run_dir / "metrics.json"
    if result["status"] == "ok" and metrics_file.is_file():
        result["figures"] = compare_to_wall_clock(json.loads(metrics_file.read_text()), logged, steps, every)
    return result


def write_corpus(path: Path, copies: int) -> Path:
    """The built-in corpus `copies` times over as a local .jsonl: on a GPU, 160 steps of 32 blocks within one epoch."""
    from llmkit.data import builtin_texts

    texts = builtin_texts()
    with path.open("w") as f:
        for _ in range(copies):
            f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    return path


def compare_to_wall_clock(metrics: dict, logged: list[float], steps: int, every: int) -> dict:
    """metrics.json's steady tokens/s next to the wall clock between the log lines that bound its window."""
    log_steps = [1, *range(every, steps + 1, every)] if every > 1 else list(range(1, steps + 1))
    first = steps - metrics["steady_steps"]
    figures = {
        key: metrics.get(key)
        for key in ("preset", "precision", "loss_implementation", "torch_compile", "mfu", "world_size")
    }
    figures.update(
        steady_tokens_per_second=metrics["steady_tokens_per_second"], steady_steps=metrics["steady_steps"]
    )
    if len(logged) != len(log_steps) or first not in log_steps:
        figures["error"] = f"{len(logged)} loss lines for steps {log_steps}; steady window starts at {first}"
        return figures
    seconds = logged[-1] - logged[log_steps.index(first)]
    tokens_per_step = metrics["tokens_seen"] / metrics["global_step"]
    wall = metrics["steady_steps"] * tokens_per_step / seconds
    ratio = metrics["steady_tokens_per_second"] / wall
    figures.update(
        wall_clock_tokens_per_second=round(wall, 1),
        wall_clock_window=f"steps {first + 1}-{steps}, {seconds:.2f} s",
        metrics_vs_wall_clock=round(ratio, 3),
        agrees_within_5_percent=abs(ratio - 1) <= AGREE,
    )
    return figures


def step_preset(out: Path, device: str, tiny: bool, timeout: float, preset: str) -> dict:
    """(d) one preset at its default GPU micro-batch for a few steps, in its own process: peak memory or the OOM."""
    json_out = out / f"preset-{preset}.json"
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("gpu_preset.py")),
        str(out),
        preset,
        "--device",
        device,
    ]
    result = run_step([*cmd, *(["--tiny"] if tiny else [])], out / "logs" / f"preset-{preset}.log", timeout)
    if json_out.is_file():
        result["figures"] = json.loads(json_out.read_text())
        if result["figures"].get("oom"):
            result.update(status="failed", error="out of memory at the default micro-batch")
    return result


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; refuses a CUDA check without CUDA before any work."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", help="folder for gpu_check.json and logs/ (created)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument(
        "--tiny", action="store_true", help="tiny shapes and few steps: a dry run of every step"
    )
    parser.add_argument(
        "--steps",
        nargs="+",
        default=["bench_pretrain", "losses", "recipe", "presets"],
        choices=["bench_pretrain", "losses", "recipe", "presets"],
        help="which steps to run (default: all, in this order)",
    )
    parser.add_argument(
        "--time_scale", type=float, default=1.0, help="multiply every step's timeout (slower GPUs)"
    )
    args = parser.parse_args(argv)
    if args.device == "cpu" and not args.tiny:
        parser.exit(2, "gpu_check: --device cpu runs only with --tiny (GPT-2 shapes take hours on a CPU).\n")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every step, write OUT_DIR/gpu_check.json after each, print a summary; exit 1 if a step failed."""
    args = parse(argv)
    out = Path(args.out_dir).resolve()
    env = environment()
    if args.device == "cuda" and not env.get("cuda"):
        print(
            "gpu_check: no CUDA device here (torch.cuda.is_available() is False); run it on a GPU machine, "
            "or dry-run it with --device cpu --tiny.",
            file=sys.stderr,
        )
        return 2
    (out / "logs").mkdir(parents=True, exist_ok=True)
    timeouts = {k: v * args.time_scale for k, v in (TINY_TIMEOUTS if args.tiny else TIMEOUTS).items()}
    report = {
        "command": " ".join(sys.argv),
        "device": args.device,
        "tiny": args.tiny,
        "environment": env,
        "steps": {},
    }
    steps = {"bench_pretrain": step_bench, "losses": step_losses, "recipe": step_recipe}
    plan = [(name, steps[name], ()) for name in args.steps if name != "presets"]
    if "presets" in args.steps:
        plan += [(f"preset:{p}", step_preset, (p,)) for p in PRESETS]
    for name, fn, extra in plan:
        print(f"gpu_check: {name} ...", flush=True)
        timeout = timeouts[name.split(":")[0]]
        report["steps"][name] = result = fn(out, args.device, args.tiny, timeout, *extra)
        print(
            f"gpu_check: {name} {result['status']} in {result['seconds']} s {result.get('error', '')}",
            flush=True,
        )
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    failed = [n for n, r in report["steps"].items() if r["status"] != "ok"]
    print(f"gpu_check: wrote {out / 'gpu_check.json'}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
