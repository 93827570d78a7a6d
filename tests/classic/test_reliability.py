"""What a new user breaks: damaged checkpoints, Ctrl-C, odd data layouts, zero epochs, seeds, broken files."""

import gzip
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


# --- data that is laid out or stored differently --------------------------------------------------------------


def test_channels_last_rgb_npz_is_read_as_three_channels(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "rgb.npz", x_train=rgb, y_train=np.arange(20) % 2)
    train, test, _ = load_images(str(tmp_path / "rgb.npz"))
    assert train.tensors[0].shape[1:] == (3, 16, 16)  # was (16, 16, 3): 16 channels of width 3
    first = torch.cat([train.tensors[0], test.tensors[0]])
    assert sorted(first[:, :, 0, 0].mul(255).round().tolist()) == sorted(rgb[:, 0, 0].astype(float).tolist())
    np.savez(tmp_path / "tiny.npz", x_train=np.zeros((4, 3, 2, 3)), y_train=np.zeros(4))
    with pytest.raises(UserError, match=r"too small to tell the channel axis; save them as \(N, C, H, W\)"):
        load_images(str(tmp_path / "tiny.npz"))
    np.savez(tmp_path / "odd.npz", x_train=np.zeros((4, 5, 6, 7)), y_train=np.zeros(4))
    with pytest.raises(UserError, match=r"odd.npz: x_train has shape \(4, 5, 6, 7\)"):
        load_images(str(tmp_path / "odd.npz"))


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (
            np.zeros((20, 8, 8)),
            np.array(["cat", "dog"] * 10),
            r"y_train holds <U3 values such as \['cat', 'dog', 'cat'\]",
        ),
        (np.zeros((20, 8, 8)), np.linspace(0, 1, 20), r"y_train holds float64 values such as \[0.0, 0.05"),
        (np.zeros((20, 8, 8)), np.arange(20) - 1, r"y_train holds int64 values such as \[-1, 0, 1\]"),
        (np.full((20, 8, 8), "px"), np.arange(20) % 2, r"x_train holds <U2 values, not pixel numbers"),
    ],
)
def test_npz_labels_that_are_not_class_ids_and_pixels_that_are_not_numbers_are_named(tmp_path, x, y, message):
    np.savez(
        tmp_path / "d.npz", x_train=x, y_train=y
    )  # strings: a TypeError traceback; 0.05: silently class 0
    with pytest.raises(UserError, match=message):
        load_images(str(tmp_path / "d.npz"))


def test_a_text_file_that_is_binary_or_not_utf8_is_named(tmp_path):
    from llmkit.classic.data import load_text

    (tmp_path / "b.txt").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" * 20)
    (tmp_path / "l.txt").write_bytes("café olé\n".encode("latin-1") * 20)
    # binary data was read with replacement characters: "fewer than one batch", or a model trained on noise
    with pytest.raises(UserError, match=r"b.txt is a binary file \(a NUL byte at offset 8\), not text"):
        load_text(str(tmp_path / "b.txt"))
    with pytest.raises(UserError, match=r"l.txt is not UTF-8 text \(byte 0xe9 at offset 3\); convert it"):
        load_text(str(tmp_path / "l.txt"))
    (tmp_path / "u.txt").write_text("naïve café ✓\n")
    assert load_text(str(tmp_path / "u.txt")) == "naïve café ✓\n"


def test_a_text_file_in_utf16_or_with_a_byte_order_mark_is_read_as_written(tmp_path):
    # UTF-16 was called "a binary file (a NUL byte at offset 3)" with no word of the fix; a UTF-8 byte-order
    # mark became the first character the char-RNN learned (and a word2vec word)
    from llmkit.classic.data import load_text

    (tmp_path / "w.txt").write_text("notes from Windows\n", encoding="utf-16")
    with pytest.raises(UserError, match=r"w.txt is UTF-16 text .* `iconv -f utf-16 -t utf-8 "):
        load_text(str(tmp_path / "w.txt"))
    (tmp_path / "bom.txt").write_bytes("\ufeffnotes from Windows\n".encode())
    assert load_text(str(tmp_path / "bom.txt")) == "notes from Windows\n"


def test_broken_image_folders_and_idx_files_are_named(tmp_path):
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "imgs" / label / "0.png")
    (tmp_path / "imgs" / "b" / "1.png").write_bytes(b"this is text, not a PNG")
    with pytest.raises(UserError, match=r"b/1.png is not a readable image"):
        load_images(str(tmp_path / "imgs"))

    images = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (10, 8, 8)) + bytes(640)
    labels = bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + bytes(range(10))
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "train-images-idx3-ubyte").write_bytes(images[:300])
    (tmp_path / "cut" / "train-labels-idx1-ubyte").write_bytes(labels)
    with pytest.raises(
        UserError,
        match=r"train-images-idx3-ubyte is truncated or damaged: .* 640 bytes of data but it holds 284",
    ):
        load_images(str(tmp_path / "cut"))
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(images)[:20])
    (tmp_path / "gz" / "train-labels-idx1-ubyte").write_bytes(labels)
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte.gz cannot be read"):
        load_images(str(tmp_path / "gz"))
    (tmp_path / "count").mkdir()
    (tmp_path / "count" / "train-images-idx3-ubyte").write_bytes(images)
    (tmp_path / "count" / "train-labels-idx1-ubyte").write_bytes(
        bytes([0, 0, 8, 1]) + (9).to_bytes(4, "big") + bytes(9)
    )
    with pytest.raises(
        UserError, match=r"train-labels-idx1-ubyte has 9 labels but .*train-images-idx3-ubyte has 10 images"
    ):
        load_images(str(tmp_path / "count"))


def test_cnn_keeps_the_data_size_unless_asked(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(
        train_cnn,
        "train_classifier",
        lambda args, model, train, test, config, **kw: seen.update(
            size=config["image_size"], shape=tuple(train.tensors[0].shape[1:])
        ),
    )
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "mnist-like.npz",
        x_train=rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        y_train=np.arange(30) % 10,
    )
    train_cnn.main(["--output_dir", str(tmp_path / "a"), "--dataset", str(tmp_path / "mnist-like.npz")])
    assert seen == {"size": 28, "shape": (1, 28, 28)}  # was resized to 16x16 by default
    train_cnn.main(
        [
            "--output_dir",
            str(tmp_path / "b"),
            "--dataset",
            str(tmp_path / "mnist-like.npz"),
            "--image_size",
            "16",
        ]
    )
    assert seen == {"size": 16, "shape": (1, 16, 16)}
    train_cnn.main(["--output_dir", str(tmp_path / "c")])
    assert seen == {"size": 8, "shape": (1, 8, 8)}  # the digits are 8x8 scans


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
