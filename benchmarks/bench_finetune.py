"""Full fine-tuning vs LoRA for the MiniLM classifier on the built-in sample: samples/s, peak memory, accuracy.

    python benchmarks/bench_finetune.py            # 2 rounds x (full, LoRA), each in a fresh process

Each variant runs in its own process, so peak resident memory (ru_maxrss) is that variant's alone;
the variants alternate so the machine's noise hits both alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = r"""
import json, resource, sys, tempfile, time, warnings
warnings.simplefilter("ignore")
from llmkit.recipes.finetune_bert import main
lora = sys.argv[1] == "lora"
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with tempfile.TemporaryDirectory() as out:
    argv = ["--output_dir", out, "--num_train_epochs", sys.argv[2], "--disable_tqdm", "true", "--save_strategy", "no",
            "--load_best_model_at_end", "false", "--report_to", "none"]
    if lora:
        argv += ["--use_lora", "--lora_r", "8", "--learning_rate", "1e-3"]
    t = time.perf_counter()
    m = main(argv)
    seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("RESULT " + json.dumps({"variant": sys.argv[1], "accuracy": m["eval_accuracy"], "macro_f1": m["eval_macro_f1"],
      "trainable_parameters": m["trainable_parameters"], "parameters": m["parameters"], "seconds": seconds,
      "train_samples_per_second": m["train_samples_per_second"], "peak_rss_mb": peak / 1024, "start_rss_mb": base / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", default="3")
    parser.add_argument("--out", default=str(HERE / "results" / "finetune.json"))
    args = parser.parse_args()
    runs = []
    for _ in range(args.rounds):
        for variant in ("full", "lora"):
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, variant, args.epochs],
                capture_output=True,
                text=True,
                cwd=HERE.parent,
                check=True,
            )
            result = json.loads(proc.stdout.split("RESULT ", 1)[1].splitlines()[0])
            print(result, flush=True)
            runs.append(result)
    summary = {}
    for variant in ("full", "lora"):
        rows = [r for r in runs if r["variant"] == variant]
        summary[variant] = {
            "seconds_median": round(statistics.median(r["seconds"] for r in rows), 1),
            "train_samples_per_second_median": round(
                statistics.median(r["train_samples_per_second"] for r in rows), 2
            ),
            "peak_rss_mb_median": round(statistics.median(r["peak_rss_mb"] for r in rows)),
            "accuracy": [round(r["accuracy"], 4) for r in rows],
            "trainable_parameters": rows[0]["trainable_parameters"],
            "parameters": rows[0]["parameters"],
        }
    summary["lora_vs_full_samples_per_second"] = round(
        summary["lora"]["train_samples_per_second_median"]
        / summary["full"]["train_samples_per_second_median"],
        3,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"runs": runs, "summary": summary}, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
