"""Every recipe, run for a moment, leaves the same run record: metrics.json with the common keys, and one closing
summary (where the model is, its figures, how to use it) as the last thing it prints."""

import json
import shlex

import pytest

from llmkit.apps.models import check_folders, parse_args
from llmkit.finetune.common import packaged_minilm
from llmkit.recipes import RECIPES
from llmkit.record import COMMON_KEYS

MINUTE = ["--per_device_train_batch_size", "8", "--disable_tqdm", "true", "--report_to", "none"]
SHORT_CLASSIC = ["--num_train_epochs", "1"]


def _tiny_argv(name: str, tmp_path, tiny_run) -> list[str]:
    """The smallest run of each recipe: a few steps on tiny data, offline."""
    rows = [("the cat sat on the mat", "pets"), ("stocks fell again today", "money")] * 12
    csv = tmp_path / "topics.csv"
    csv.write_text("text,label\n" + "\n".join(f"{t},{label}" for t, label in rows) + "\n")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"text": "one two", "target": "1 2"}) for _ in range(16)))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"Paragraph {i} about rivers, hills and the sea." for i in range(60)))
    steps = ["--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no", *MINUTE]
    judge = ["--judge", str(tmp_path / "judge-cnn")]
    return {
        "tokenize": ["--train_files", str(corpus), "--block_size", "16", "--vocab_size", "300"],
        "pretrain": [
            *[
                "--n_layer",
                "1",
                "--n_head",
                "2",
                "--n_embd",
                "32",
                "--n_positions",
                "32",
                "--vocab_size",
                "300",
            ],
            *["--max_steps", "2", "--eval_steps", "2", "--save_steps", "2", "--sample_max_new_tokens", "3"],
            *MINUTE,
        ],
        "finetune-bert": [
            "--model_name_or_path",
            packaged_minilm(),
            "--train_file",
            str(csv),
            "--max_length",
            "16",
        ]
        + steps,
        "finetune-qa": ["--model_name_or_path", packaged_minilm(), "--generated_questions", "0", *steps],
        "finetune-t5": [
            *["--train_file", str(pairs), "--text_column", "text", "--target_column", "target"],
            *["--from_scratch", "--scratch_vocab_size", "300", *steps],
        ],
        "finetune-image": ["--generated_per_class", "4", "--image_size", "16", *steps],
        "finetune-segmentation": ["--generated_images", "8", "--image_size", "32", *steps],
        "finetune-detection": ["--generated_images", "8", "--image_size", "32", *steps],
        "finetune-gpt2": ["--model_name_or_path", str(tiny_run[0]), *steps],
        "train-mlp": [*SHORT_CLASSIC, "--impl", "torch"],
        "train-cnn": SHORT_CLASSIC,
        "train-rnn": [
            *SHORT_CLASSIC,
            "--max_chars",
            "5000",
            "--hidden",
            "16",
            "--layers",
            "1",
            "--seq_len",
            "32",
        ],
        "train-gan": [*SHORT_CLASSIC, *judge],
        "train-vae": [*SHORT_CLASSIC, *judge],
        "train-diffusion": [*SHORT_CLASSIC, "--num_train_timesteps", "20", *judge],
        "train-dbn": [*SHORT_CLASSIC, "--pretrain_epochs", "1", "--hidden", "32"],
        "train-word2vec": [
            *SHORT_CLASSIC,
            "--text_file",
            str(corpus),
            "--min_count",
            "1",
            "--dim",
            "8",
            "--probe_words",
            "rivers",
        ],
    }[name]


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory):
    """One LeNet the generative recipes score their samples with (else each would train its own)."""
    root = tmp_path_factory.mktemp("every-recipe")
    RECIPES["train-cnn"].load().main(["--output_dir", str(root / "judge-cnn"), *SHORT_CLASSIC])
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_leaves_the_same_record_and_one_summary(name, judge_dir, tiny_run, capsys):
    out = judge_dir / name
    capsys.readouterr()
    RECIPES[name].load().main([*_tiny_argv(name, judge_dir, tiny_run), "--output_dir", str(out)])
    printed = capsys.readouterr().out

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(COMMON_KEYS) <= set(metrics), sorted(set(COMMON_KEYS) - set(metrics))
    assert metrics["recipe"] == name and metrics["headline"], metrics.get("headline")
    summary = printed[printed.rindex("\n== ") :]  # the last block printed
    assert f"saved to   {out.resolve()}" in summary
    assert "use it" in summary
    for line in summary.splitlines():  # the app the summary names opens this folder
        if "llmkit app models" in line:
            check_folders(parse_args(shlex.split(line.partition("llmkit app models")[2])))
