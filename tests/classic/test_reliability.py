"""What a new user breaks: damaged checkpoints, Ctrl-C, zero epochs, seeds, flags (data layouts and broken files:
test_data_layouts.py)."""

import json
import os
import signal
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from llmkit.classic.arguments import ClassicArguments
from llmkit.classic.data import load_images
from llmkit.classic.loop import fit
from llmkit.errors import UserError, run_cli
from llmkit.interrupt import GracefulInterrupt, TrainingInterrupted
from llmkit.recipes import (
    train_cnn,
    train_dbn,
    train_diffusion,
    train_gan,
    train_mlp,
    train_rnn,
    train_vae,
    train_word2vec,
)

CLASSICS = [train_cnn, train_dbn, train_diffusion, train_gan, train_mlp, train_rnn, train_vae, train_word2vec]


# --- a damaged checkpoint is skipped, never fatal ----------------------------------------------------------


def _mlp(out, epochs):
    return train_mlp.main(
        ["--output_dir", str(out), "--impl", "torch", "--hidden", "16", "--num_train_epochs", str(epochs)]
    )


@pytest.mark.parametrize("damage", ["missing history.json", "truncated safetensors"])
def test_resume_skips_a_damaged_checkpoint_and_says_so(tmp_path, capsys, damage):
    _mlp(tmp_path, 2)
    newest = tmp_path / "checkpoints" / "checkpoint-44"
    # killed between the weights and the state file (before saves were atomic)
    if damage == "missing history.json":
        (newest / "history.json").unlink()
    else:  # a copy or a disk cut the weights short
        weights = newest / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (
        tmp_path / "checkpoints" / ".tmp-checkpoint-66"
    ).mkdir()  # what a kill during a save leaves: never resumed from
    capsys.readouterr()
    metrics = _mlp(tmp_path, 3)
    captured = capsys.readouterr()
    reason = "no history.json" if damage == "missing history.json" else "model.safetensors is truncated"
    assert f"skipping {newest} ({reason}" in captured.err
    assert "resuming from" in captured.out and "checkpoint-22 (epoch 1, step 22)" in captured.out
    assert [row["epoch"] for row in metrics["log_history"] if "train_loss" in row] == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if not p.name.startswith(".")) == [
        "checkpoint-44",
        "checkpoint-66",
    ]
    # "averaged over this run": epochs 2 and 3, not 1 (trained by the first run)
    losses = [row["train_loss"] for row in metrics["log_history"] if "train_loss" in row]
    assert metrics["train_loss"] == pytest.approx(sum(losses[1:]) / 2)
    assert _mlp(tmp_path, 3)["train_loss"] is None  # nothing left to train: it showed the last run's mean
    assert "averaged over this run" not in capsys.readouterr().out


# --- Ctrl-C: the first saves at the current step, the second stops at once ------------------------------------


def _tiny_run(out, interrupt_at: int | None = None, signals: int = 1):
    """A linear classifier on 64 random points, 4 steps per epoch; optionally Ctrl-C itself at a global step."""
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    data = TensorDataset(torch.randn(64, 4, generator=torch.Generator().manual_seed(1)), torch.arange(64) % 2)
    args = ClassicArguments(
        output_dir=str(out), num_train_epochs=3, per_device_train_batch_size=16, logging_steps=1, seed=0
    )
    calls = {"n": 0}

    def step(mods, batch, update):
        calls["n"] += 1
        loss = F.cross_entropy(mods["model"](batch[0]), batch[1])
        update("model", loss)
        if calls["n"] == interrupt_at:
            for i in range(signals):
                if i:  # a second press, not the launcher forwarding the first one
                    time.sleep(GracefulInterrupt.SAME_PRESS_SECONDS)
                os.kill(os.getpid(), signal.SIGINT)
        return {"loss": loss.detach()}

    metrics = fit(
        args,
        {"model": model},
        {"model": torch.optim.Adam(model.parameters(), lr=0.05)},
        step,
        train=data,
        config={"architecture": "linear"},
    )
    return metrics, model


def test_first_ctrl_c_saves_the_current_step_and_the_resumed_run_matches_an_uninterrupted_one(tmp_path):
    _, reference = _tiny_run(tmp_path / "whole")
    with pytest.raises(SystemExit) as exit_:
        run_cli(lambda: _tiny_run(tmp_path / "cut", interrupt_at=6))  # step 6: in the middle of epoch 2
    assert exit_.value.code == 130
    assert (tmp_path / "cut" / "checkpoints" / "checkpoint-6").is_dir()
    metrics, resumed = _tiny_run(tmp_path / "cut")
    assert metrics["global_step"] == 12
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)  # same data order, same RNG: nothing lost, nothing repeated


def test_a_kill_during_the_final_save_leaves_no_earlier_runs_metrics_beside_the_new_weights(
    tmp_path, monkeypatch
):
    from llmkit.classic import loop

    _mlp(tmp_path, 2)
    save = loop._save_weights

    def save_then_die(*args):
        save(*args)
        raise SystemExit("killed")

    monkeypatch.setattr(loop, "_save_weights", save_then_die)
    with pytest.raises(SystemExit):
        _mlp(tmp_path, 3)  # epoch 3's weights written, then killed
    # epoch 2's metrics.json (its accuracy, its step) stood beside epoch 3's weights
    assert not [n for n in ("metrics.json", "loss_curve.png", "curves.png") if (tmp_path / n).exists()]
    monkeypatch.setattr(loop, "_save_weights", save)
    assert _mlp(tmp_path, 3)["global_step"] == 66


def test_second_ctrl_c_stops_at_once_without_saving(tmp_path):
    with pytest.raises(KeyboardInterrupt) as err:
        _tiny_run(tmp_path, interrupt_at=3, signals=2)
    assert not isinstance(err.value, TrainingInterrupted)
    assert not (tmp_path / "checkpoints").exists()  # the first epoch had not ended: nothing to keep


# --- flags ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", CLASSICS, ids=lambda r: r.__name__.split(".")[-1])
@pytest.mark.parametrize("epochs", ["0", "-3"])
def test_non_positive_epochs_are_refused(recipe, epochs, tmp_path):
    with pytest.raises(UserError, match=f"--num_train_epochs must be at least 1, got {epochs}"):
        recipe.main(["--output_dir", str(tmp_path), "--num_train_epochs", epochs])
    assert not (tmp_path / "model.safetensors").exists()


SEEDED = {
    train_cnn: [],
    train_mlp: ["--impl", "torch"],
    train_gan: [],
    train_vae: [],
    train_diffusion: [],
    train_rnn: ["--max_chars", "3000", "--seq_len", "32", "--hidden", "16", "--layers", "1"],
}


@pytest.mark.parametrize("recipe", list(SEEDED), ids=lambda r: r.__name__.split(".")[-1])
def test_seed_fixes_the_initial_weights(recipe, tmp_path, monkeypatch):
    from llmkit.classic import classify

    captured = []

    # stands in for training: records the weights it would start from
    def fake_fit(args, modules, *rest, **kwargs):
        captured.append(
            {f"{n}.{k}": v.clone() for n, m in modules.items() for k, v in m.state_dict().items()}
        )
        return {"eval_loss": 0.0}

    monkeypatch.setattr(recipe if hasattr(recipe, "fit") else classify, "fit", fake_fit)
    if hasattr(recipe, "load_judge"):
        monkeypatch.setattr(recipe, "load_judge", lambda *a: None)
    for seed in ("3", "3", "4"):
        recipe.main(["--output_dir", str(tmp_path), "--seed", seed, *SEEDED[recipe]])
    first, again, other = captured
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first if first[k].is_floating_point())


def test_seed_fixes_the_dbn_classifier_weights(tmp_path, monkeypatch):
    captured = []
    monkeypatch.setattr(
        train_dbn, "train_classifier", lambda args, model, *a, **kw: captured.append(model.state_dict()) or {}
    )
    monkeypatch.setattr(train_dbn, "pretrain", lambda *a: [])
    for _ in range(2):
        train_dbn.main(["--output_dir", str(tmp_path), "--seed", "5"])
    assert len(captured) == 4 and all(torch.equal(captured[1][k], captured[3][k]) for k in captured[1])


def test_report_to_tensorboard_writes_events(tmp_path):
    pytest.importorskip("tensorboard")
    train_mlp.main(
        [
            "--output_dir",
            str(tmp_path),
            "--impl",
            "torch",
            "--num_train_epochs",
            "1",
            "--report_to",
            "tensorboard",
        ]
    )
    assert list(tmp_path.rglob("events.out.tfevents.*"))
    assert json.loads((tmp_path / "config.json").read_text())["args"]["report_to"] == ["tensorboard"]


def test_an_image_folder_of_one_class_is_refused_by_the_classifiers(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "imgs" / "cats").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(tmp_path / "imgs" / "cats" / f"{i}.png")
    from llmkit.cli import main as llmkit_main

    for command in ("train-cnn", "train-mlp"):
        argv = [command, "--dataset", str(tmp_path / "imgs"), "--output_dir", str(tmp_path / "o")]
        with pytest.raises(SystemExit) as exit_:
            llmkit_main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "Traceback" not in err
        assert "of only 1 class(es): a classifier needs at least 2" in err
    train, _, _ = load_images(str(tmp_path / "imgs"))  # a generative model may learn one class
    assert len(train) == 5


def _squares(folder, colours, n=30, side=16):
    """Squares of random size and place on black, one subfolder per colour."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, rgb in colours.items():
        (folder / name).mkdir(parents=True)
        for i in range(n):
            image = np.zeros((side, side, 3), dtype=np.uint8)
            size, top, left = rng.integers(4, 9), rng.integers(0, 8), rng.integers(0, 8)
            image[top : top + size, left : left + size] = rgb
            Image.fromarray(image).save(folder / name / f"{i}.png")
    return folder


@pytest.mark.slow
def test_an_rgb_image_folder_trains_in_colour_and_the_saved_model_reads_colour_and_grey(tmp_path, capsys):
    from PIL import Image

    from llmkit.classic.registry import load_classic

    # Equal luminance: PIL's grey of (255, 0, 0) and of (0, 130, 0) is the same 76, so only colour tells them apart.
    red, green = (255, 0, 0), (0, 130, 0)
    assert Image.new("RGB", (1, 1), red).convert("L").getpixel((0, 0)) == 76
    assert Image.new("RGB", (1, 1), green).convert("L").getpixel((0, 0)) == 76
    folder = _squares(tmp_path / "squares", {"green": green, "red": red})
    out = tmp_path / "cnn"
    argv = ["--dataset", str(folder), "--output_dir", str(out), "--num_train_epochs", "6"]
    metrics = train_cnn.main(
        [*argv, "--learning_rate", "3e-3", "--augment", "false", "--per_device_train_batch_size", "8"]
    )
    assert "images: 3 channels (RGB), 16x16" in capsys.readouterr().out
    assert metrics["eval_accuracy"] >= 0.9  # read as grey it was 0.44: chance

    model, config = load_classic(out, ("lenet",))
    assert config["kwargs"]["channels"] == 3
    x = torch.zeros(2, 3, 16, 16)
    x[0, 0, 4:12, 4:12] = 1.0  # red
    x[1, 1, 4:12, 4:12] = 130 / 255  # green
    with torch.no_grad():
        assert model(x).argmax(-1).tolist() == [1, 0]  # classes in folder order: green, red
        assert model(x[:, :1]).shape == (2, 2)  # a grey drawing (the app's pad) is read as equal channels


@pytest.mark.parametrize("recipe", [train_vae, train_gan, train_diffusion])
def test_a_batch_larger_than_the_data_is_refused_before_the_judge_trains(recipe, tmp_path):
    # the judge (a digits CNN, ~20 s) was trained first, then the run refused the batch size
    out = tmp_path / "run"
    with pytest.raises(UserError, match="fewer than one batch of 100000 per process"):
        recipe.main(
            ["--output_dir", str(out), "--batch_size", "100000", "--judge", str(tmp_path / "no-judge")]
        )
    assert not (out / "judge").exists()


def test_a_dbn_batch_larger_than_the_data_is_refused_before_pretraining(tmp_path):
    # the CD pretraining took whole batches only: none, then an IndexError traceback from its epoch means
    out = tmp_path / "run"
    with pytest.raises(UserError, match="fewer than one batch of 100000 per process"):
        train_dbn.main(["--output_dir", str(out), "--batch_size", "100000", "--pretrain_epochs", "1"])
    assert not (out / "rbm1_curves.png").exists()


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_a_negative_or_nan_max_grad_norm_is_refused(value):
    # it trained without clipping and without a word (NaN > 0 is false, so NaN did too)
    with pytest.raises(
        UserError, match=rf"--max_grad_norm must be 0 \(no clipping\) or positive and finite, got {value}"
    ):
        ClassicArguments(max_grad_norm=value)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--num_inference_steps", "1000"],
            "--num_inference_steps 1000 is more than the model's --num_train_timesteps 200",
        ),
        (["--num_train_timesteps", "0"], "--num_train_timesteps must be at least 2, got 0"),
    ],
)
def test_diffusion_step_counts_are_refused_naming_their_flags(flags, message, tmp_path):
    # the scheduler said "sampling steps must be between 1 and 200" / "the number of diffusion steps", no flag
    with pytest.raises(UserError, match=message):
        train_diffusion.main(["--output_dir", str(tmp_path / "run"), *flags])


def test_a_text_file_with_the_classify_task_is_refused(tmp_path):
    # --task classify trained on the built-in docstring areas and never read the file, without a word
    from llmkit.arguments import parse_args

    with pytest.raises(
        UserError, match="--text_file is for --task lm; --task classify trains on the built-in"
    ):
        parse_args(train_rnn.TYPES, ["--task", "classify", "--text_file", str(tmp_path / "mine.txt")])
