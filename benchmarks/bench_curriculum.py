"""Issue 7's figures: DBN vs random initialisation, word2vec throughput, and what a short HP search gains.

python benchmarks/bench_curriculum.py
python benchmarks/bench_curriculum.py --only dbn      # re-measure some rows (the others keep their recorded figures)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from llmkit.recipes import finetune_bert, pretrain_gpt2, train_dbn, train_word2vec  # noqa: E402

RUNS = Path("runs/bench-curriculum")
PRETRAIN = [
    "--max_steps",
    "100",
    "--eval_steps",
    "50",
    "--save_steps",
    "1000",
    "--disable_tqdm",
    "true",
    "--sample_max_new_tokens",
    "5",
]
BERT = [
    "--num_train_epochs",
    "1",
    "--disable_tqdm",
    "true",
    "--save_strategy",
    "no",
    "--load_best_model_at_end",
    "false",
]


def timed(fn, argv):
    t = time.perf_counter()
    result = fn(argv)
    return result, round(time.perf_counter() - t, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["dbn", "word2vec", "hp_search"],
        default=["dbn", "word2vec", "hp_search"],
    )
    only = parser.parse_args().only
    path = HERE / "results" / "curriculum.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    if "dbn" in only:
        # from scratch: an earlier run's checkpoints would be resumed
        shutil.rmtree(RUNS / "dbn", ignore_errors=True)
        dbn, seconds = timed(train_dbn.main, ["--output_dir", str(RUNS / "dbn")])
        results["dbn"] = {
            "seconds": seconds,
            "pretrained_test_accuracy": dbn["eval_accuracy"],
            "random_init_test_accuracy": dbn["random_init_eval_accuracy"],
            "pretrained_best": dbn["best_eval_accuracy"],
            "random_init_best": dbn["random_init_best_eval_accuracy"],
        }
        print(results, flush=True)
    if "word2vec" in only:
        w2v, seconds = timed(
            train_word2vec.main, ["--output_dir", str(RUNS / "word2vec"), "--compare_with", "runs/gpt2-tiny"]
        )
        results["word2vec"] = {
            "seconds": seconds,
            "words_per_second": round(w2v["words_per_second"]),
            "vocabulary": w2v["vocabulary"],
            "compared_with_lm": w2v["compared_with_lm"],
        }
        print(results, flush=True)
    if "hp_search" in only:
        hp_search(results)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def hp_search(results: dict) -> None:
    """What a short Optuna search gains over the defaults, for pretraining and the BERT classifier."""
    default, _ = timed(pretrain_gpt2.main, [*PRETRAIN, "--output_dir", str(RUNS / "pretrain-default")])
    search, seconds = timed(
        pretrain_gpt2.main,
        [*PRETRAIN, "--hp_search_trials", "4", "--output_dir", str(RUNS / "pretrain-search")],
    )
    results["hp_search_pretrain_tiny_100_steps"] = {
        "default_eval_loss": default["eval_loss"],
        "best_eval_loss": search["value"],
        "best_params": search["params"],
        "trials": 4,
        "search_seconds": seconds,
    }
    print(results, flush=True)
    default, _ = timed(finetune_bert.main, [*BERT, "--output_dir", str(RUNS / "bert-default")])
    search, seconds = timed(
        finetune_bert.main, [*BERT, "--hp_search_trials", "3", "--output_dir", str(RUNS / "bert-search")]
    )
    results["hp_search_minilm_1_epoch"] = {
        "default_accuracy": default["eval_accuracy"],
        "best_accuracy": search["value"],
        "best_params": search["params"],
        "trials": 3,
        "search_seconds": seconds,
    }
    print(json.dumps(results, indent=2), flush=True)


if __name__ == "__main__":
    main()
