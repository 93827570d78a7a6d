"""RBM/DBN, word2vec and hyperparameter search (issue 7's curriculum)."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from llmkit.classic.data import load_images
from llmkit.classic.rbm import RBM
from llmkit.classic.word2vec import Vocabulary, analogy, neighbours, train_word2vec
from llmkit.errors import UserError
from llmkit.hpsearch import PRETRAIN_SPACE, load_space
from llmkit.recipes import train_dbn
from llmkit.recipes import train_word2vec as word2vec_recipe
from tests.helpers import FAST_TRAINING, TINY_MODEL, run_pretrain

CAPITALS = [
    ("paris", "france"),
    ("rome", "italy"),
    ("berlin", "germany"),
    ("madrid", "spain"),
    ("lisbon", "portugal"),
    ("vienna", "austria"),
]


def _capitals_corpus(n=3000, seed=0):
    rng = random.Random(seed)
    words = []
    for _ in range(n):
        city, country = rng.choice(CAPITALS)
        words += ["the", "capital", "of", country, "is", city, "and", city, "lies", "in", country]
    return words


def test_cd1_lowers_reconstruction_error_on_digits():
    train, _, _ = load_images("digits")
    history = RBM(64, 64).fit(train.tensors[0].flatten(1), epochs=8, lr=0.1)
    assert history[-1]["reconstruction_error"] < 0.95 * history[0]["reconstruction_error"]
    pcd = RBM(64, 32).fit(train.tensors[0].flatten(1)[:500], epochs=2, persistent=True, k=2)
    assert np.isfinite(pcd[-1]["free_energy_gap"])


def test_dbn_pretraining_and_finetuning_reach_a_set_accuracy(tmp_path):
    results = train_dbn.main(
        ["--output_dir", str(tmp_path), "--pretrain_epochs", "3", "--num_train_epochs", "8"]
    )
    assert results["eval_accuracy"] > 0.85 and 0 <= results["random_init_eval_accuracy"] <= 1
    assert (tmp_path / "filters.png").is_file() and (tmp_path / "dbn.safetensors").is_file()
    # the same command again trains nothing: it printed every run's mean loss as "averaged over this run"
    again = train_dbn.main(
        ["--output_dir", str(tmp_path), "--pretrain_epochs", "3", "--num_train_epochs", "8"]
    )
    assert again["train_loss"] is None and again["eval_accuracy"] == results["eval_accuracy"]


@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_word2vec_puts_cooccurring_words_nearer(mode):
    model, vocab, losses, wps, _ = train_word2vec(
        _capitals_corpus(), dim=32, mode=mode, window=3, min_count=1, epochs=3, subsample=0
    )
    v = model.vectors()
    sim = lambda a, b: float(v[vocab.index[a]] @ v[vocab.index[b]])  # noqa: E731
    matched = np.mean([sim(city, country) for city, country in CAPITALS])
    mismatched = np.mean(
        [
            sim(city, country)
            for city, _ in CAPITALS
            for _, country in CAPITALS
            if (city, country) not in CAPITALS
        ]
    )
    assert matched > mismatched and losses[-1] < losses[0] and wps > 0


def test_analogy_resolves_on_a_constructed_corpus():
    model, vocab, *_ = train_word2vec(
        _capitals_corpus(), dim=32, window=3, min_count=1, epochs=3, subsample=0
    )
    assert analogy(model.vectors(), vocab, ("paris", "france", "italy"), k=1)[0][0] == "rome"


def test_word2vec_counts_optimizer_steps_not_epochs(tmp_path):
    # global_step was the epoch count: one epoch of many batches was reported as 1 step
    words = _capitals_corpus(100)
    *_, steps = train_word2vec(
        words, dim=8, mode="cbow", window=2, min_count=1, epochs=2, batch_size=10, subsample=0
    )
    per_epoch = -(-(len(words) - 2 * 2) // 10)  # CBOW: one pair per position with a whole window
    assert steps == [per_epoch, 2 * per_epoch]
    text = tmp_path / "corpus.txt"
    text.write_text(" ".join(words))
    argv = ["--text_file", str(text), "--output_dir", str(tmp_path / "w"), "--dim", "8", "--min_count", "1"]
    argv += ["--probe_words", "paris", "--compare_with", "", "--num_train_epochs", "1", "--batch_size", "4"]
    metrics = word2vec_recipe.main(argv)
    saved = json.loads((tmp_path / "w" / "metrics.json").read_text())
    assert saved["global_step"] == metrics["log_history"][-1]["step"] == metrics["global_step"] > 1


def test_word2vec_bad_input(tmp_path):
    with pytest.raises(UserError, match="no words"):
        train_word2vec([])
    vocab = Vocabulary(["a", "b", "a"], min_count=1)
    with pytest.raises(UserError, match="not in the vocabulary"):
        neighbours(np.eye(2), vocab, "zebra")
    empty = tmp_path / "empty.txt"
    empty.write_text("   ")
    with pytest.raises(UserError, match="is empty"):
        word2vec_recipe.main(["--text_file", str(empty), "--output_dir", str(tmp_path / "o")])


def test_word2vec_recipe_exports_the_text_format(tmp_path, tiny_run):
    text = tmp_path / "corpus.txt"
    text.write_text(" ".join(_capitals_corpus(800)))
    result = word2vec_recipe.main(
        [
            "--text_file",
            str(text),
            "--output_dir",
            str(tmp_path / "w"),
            "--dim",
            "16",
            "--min_count",
            "2",
            "--probe_words",
            "paris",
            "--compare_with",
            str(tiny_run[0]),
        ]
    )
    header = (tmp_path / "w" / "vectors.txt").read_text().splitlines()[0]
    assert header == f"{result['vocabulary']} 16" and "paris" in result["neighbours"]


def test_word2vec_on_a_text_without_the_default_probe_words_probes_its_own(tmp_path, capfd):
    # the default probe words are CPython's ("list", "file", ...): a user's own --text_file trained, then ended
    # with "none of the probe words ... is in the vocabulary", exit 2 and no vectors.txt
    text = tmp_path / "corpus.txt"
    text.write_text(" ".join(_capitals_corpus(300)))
    argv = ["--text_file", str(text), "--output_dir", str(tmp_path / "w"), "--dim", "8", "--compare_with", ""]
    result = word2vec_recipe.main([*argv, "--num_train_epochs", "1", "--min_count", "2"])
    assert (tmp_path / "w" / "vectors.txt").is_file() and len(result["neighbours"]) == 6
    err = capfd.readouterr().err
    assert "none of the probe words ['list', 'file'" in err and "--probe_words chooses them" in err
    # --min_count 0 or below was taken as 1 without a word
    with pytest.raises(UserError, match="--min_count must be at least 1, got 0"):
        word2vec_recipe.main([*argv, "--min_count", "0"])


def test_word2vec_reruns_report_the_loss_of_their_own_epochs(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text(" ".join(_capitals_corpus(400)))
    argv = ["--text_file", str(text), "--output_dir", str(tmp_path / "w"), "--dim", "8", "--min_count", "2"]
    argv += ["--probe_words", "paris"]
    first = word2vec_recipe.main([*argv, "--num_train_epochs", "1"])
    # "averaged over this run" was the mean over every run's epochs: the rerun that trained nothing, and the one
    # that trained epoch 2 alone, printed epoch 1's loss in it
    assert word2vec_recipe.main([*argv, "--num_train_epochs", "1"])["train_loss"] is None
    second = word2vec_recipe.main([*argv, "--num_train_epochs", "2"])
    assert second["train_loss"] == second["final_train_loss"] != first["train_loss"]


def test_search_space_errors(tmp_path):
    assert load_space(None, PRETRAIN_SPACE) == PRETRAIN_SPACE
    for space, message in [
        ({"learning_rate": {"low": 1e-2, "high": 1e-4}}, "greater than high"),
        ({"learning_rat": {"low": 1e-4, "high": 1e-2}}, "unknown hyperparameter"),
        ({"weight_decay": {"choices": []}}, "choices must be a non-empty list"),
        ({"learning_rate": {"low": 0, "high": 1, "log": True}}, "log scale needs low > 0"),
        ({"learning_rate": {"low": "fast", "high": 1}}, "low must be a number, got 'fast'"),
        (["learning_rate", "weight_decay"], "must map each hyperparameter to its range"),  # was a traceback
    ]:
        path = tmp_path / "space.yaml"
        path.write_text(yaml.safe_dump(space))
        with pytest.raises(UserError, match=message):
            load_space(str(path), {})
    path.write_text("learning_rate: {low: [1e-5, high: 1e-3}")
    with pytest.raises(UserError, match="is not valid YAML"):
        load_space(str(path), {})
    # YAML reads 1e-5 (no dot) as a string: it reached Optuna as one
    path.write_text("learning_rate: {low: 1e-5, high: 1e-3, log: true}")
    assert load_space(str(path), {}) == {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}}


@pytest.mark.slow
def test_pretrain_hp_search_writes_a_config_the_recipe_accepts(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text(
        yaml.safe_dump(
            {
                "learning_rate": {"low": 1e-4, "high": 5e-3, "log": True},
                "weight_decay": {"low": 0.0, "high": 0.2},
            }
        )
    )
    out = tmp_path / "search"
    best = run_pretrain(
        [
            *TINY_MODEL,
            *FAST_TRAINING,
            "--max_steps",
            "8",
            "--eval_steps",
            "4",
            "--save_steps",
            "1000",
            "--hp_search_trials",
            "3",
            "--hp_search_space",
            str(space),
            "--output_dir",
            str(out),
        ]
    )
    trials = json.loads((out / "hp_search" / "trials.json").read_text())["trials"]
    assert len(trials) == 3 and (out / "hp_search" / "trials.png").is_file()
    config = yaml.safe_load((out / "hp_search" / "best_config.yaml").read_text())
    assert config["learning_rate"] == best["params"]["learning_rate"] and config["n_layer"] == 2
    # what this CPU filled in stays out: reused on a GPU machine, use_cpu: true trained on the CPU
    assert not {"use_cpu", "torch_compile", "dataloader_pin_memory", "bf16"} & set(config)
    said = capsys.readouterr()
    assert (
        f"train with it: llmkit pretrain {best['config']}" in said.out + said.err
    )  # was "python <recipe> ..."
    metrics = run_pretrain([best["config"]])  # the recipe takes the file as its only argument
    assert metrics["global_step"] == 8 and metrics["preset"].startswith("custom (tiny with n_layer=2")


@pytest.mark.slow
def test_bert_hp_search_runs(tmp_path):
    from llmkit.recipes.finetune_bert import main as finetune_bert
    from tests.finetune.helpers import ANIMALS, MINILM, MONEY

    data = tmp_path / "d.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"text": t, "label": lab})
            for lab, texts in (("a", ANIMALS), ("m", MONEY))
            for t in texts * 2
        )
    )
    best = finetune_bert(
        [
            *MINILM,
            "--train_file",
            str(data),
            "--max_length",
            "24",
            "--num_train_epochs",
            "1",
            "--disable_tqdm",
            "true",
            "--hp_search_trials",
            "2",
            "--output_dir",
            str(tmp_path / "o"),
            "--validation_split_percentage",
            "25",
        ]
    )
    out = tmp_path / "o" / "hp_search"
    record = json.loads((out / "trials.json").read_text())
    values = [t["value"] for t in record["trials"] if t["state"] == "COMPLETE"]
    assert record["objective"] == "eval_accuracy" and record["direction"] == "maximize" and len(values) == 2
    assert best["value"] == max(values)  # the best trial is the one reported, not the last
    rates = {t["params"]["learning_rate"] for t in record["trials"]}
    assert len(rates) == 2  # two different settings were really tried
    config = yaml.safe_load((out / "best_config.yaml").read_text())
    assert config["learning_rate"] == best["params"]["learning_rate"]
    assert config["train_file"] == str(data) and config["max_length"] == 24  # the run's own flags are kept
    assert yaml.safe_load(Path(best["config"]).read_text())["train_file"] == str(data)


def test_word2vec_resumes_exactly_after_ctrl_c_and_refuses_other_settings(tmp_path):
    import os
    import signal
    import threading
    import time

    from llmkit.interrupt import TrainingInterrupted

    words = _capitals_corpus(n=200)
    run = dict(dim=16, window=3, min_count=1, epochs=12, batch_size=64, subsample=0)
    reference, _, losses, _, steps = train_word2vec(words, **run, checkpoint=tmp_path / "whole.pt")
    cut = tmp_path / "cut.pt"

    def ctrl_c_once_training():  # after the first epoch's checkpoint: mid-run, inside the Ctrl-C handler
        while not cut.exists():
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c_once_training, daemon=True).start()
    saved = r"saved .*cut.pt \(epoch \d+ of 12, batch \d+\); run the same command"
    with pytest.raises(TrainingInterrupted, match=saved):
        train_word2vec(words, **run, checkpoint=cut)  # before: a bare KeyboardInterrupt, nothing saved
    resumed, _, resumed_losses, wps, resumed_steps = train_word2vec(words, **run, checkpoint=cut)
    np.testing.assert_array_equal(resumed.vectors(), reference.vectors())  # nothing lost, nothing repeated
    assert resumed_losses == losses and resumed_steps == steps and wps > 0
    with pytest.raises(UserError, match=r"cut.pt was saved by a run with other settings .*\(dim 16 -> 8\)"):
        train_word2vec(words, **{**run, "dim": 8}, checkpoint=cut)
