"""A diverged classic run ends with one error naming the epoch and the fix; metrics.json never holds NaN; a
learning rate float32 cannot step with is refused."""

import json

import pytest

from llmkit.classic.arguments import ClassicArguments
from llmkit.classic.loop import write_report
from llmkit.cli import main as llmkit_main
from llmkit.errors import UserError


def test_a_vae_that_diverges_stops_at_that_epoch_and_saves_nothing_of_it(tmp_path, cnn_dir, capsys):
    # it exited 0, its summary read "eval_loss nan", and metrics.json held NaN (not strict JSON)
    out = tmp_path / "vae"
    argv = ["train-vae", "--output_dir", str(out), "--judge", str(cnn_dir[0]), "--learning_rate", "1e6"]
    with pytest.raises(SystemExit) as exit_:
        llmkit_main([*argv, "--num_train_epochs", "2"])
    err = capsys.readouterr().err
    assert exit_.value.code != 0 and "Traceback" not in err
    assert "training diverged: at epoch 1 (step " in err and "Lower --learning_rate (this run: 1e+06)" in err
    assert not (out / "metrics.json").exists() and not (out / "checkpoints").exists()


def test_a_dbn_whose_rbm_diverges_names_the_rbm_learning_rate(tmp_path, capsys):
    # the NaN probabilities of a diverged RBM ended the run in torch.bernoulli's RuntimeError traceback
    argv = [
        "train-dbn",
        "--output_dir",
        str(tmp_path),
        "--rbm_learning_rate",
        "1e30",
        "--pretrain_epochs",
        "2",
    ]
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code != 0 and "Traceback" not in err
    assert (
        "training diverged: at epoch 1 of RBM 1 " in err
        and "Lower --rbm_learning_rate (this run: 1e+30)" in err
    )


def test_word2vec_stops_at_the_diverged_epoch_before_its_checkpoint(tmp_path):
    from llmkit.classic.word2vec import train_word2vec

    words = ("paris france berlin germany rome italy " * 100).split()
    with pytest.raises(UserError, match=r"training diverged: at epoch 1 \(step \d+\) the mean loss is nan"):
        train_word2vec(
            words,
            dim=8,
            min_count=1,
            epochs=2,
            batch_size=128,
            lr=1e30,
            subsample=0,
            checkpoint=tmp_path / "w.pt",
        )
    assert not (tmp_path / "w.pt").exists()  # a rerun would have resumed NaN vectors


def test_nan_never_reaches_metrics_json(tmp_path):
    # the recipes that report without the shared loop (NumPy MLP, word2vec, the DBN's RBMs) go through here
    args = ClassicArguments(output_dir=str(tmp_path), learning_rate=5.0)
    history = [
        {"epoch": 1, "step": 3, "train_loss": 2.0},
        {"epoch": 2, "step": 6, "train_loss": float("nan")},
    ]
    with pytest.raises(
        UserError, match=r"at epoch 2 \(step 6\) train_loss is nan\. Lower --learning_rate \(this run: 5\)"
    ):
        write_report(args, {"global_step": 6, "world_size": 1}, history, title="t", summary=False)
    inf = {"global_step": 3, "world_size": 1, "per_epoch": [1.0, float("inf")]}
    with pytest.raises(UserError, match="at the end of training per_epoch holds a NaN or infinite number"):
        write_report(args, inf, history[:1], title="t", summary=False)
    assert not (tmp_path / "metrics.json").exists()
    write_report(args, {"global_step": 3, "world_size": 1}, history[:1], title="t", summary=False)
    json.loads((tmp_path / "metrics.json").read_text(), parse_constant=pytest.fail)  # strict JSON


def test_a_learning_rate_beyond_float32_is_refused_when_parsed():
    # 1e38 ended the first optimizer step in torch's "cannot be converted to type float without overflow"
    with pytest.raises(UserError, match=r"--learning_rate must be at most 3.4e\+37, got 1e\+38"):
        ClassicArguments(output_dir="unused", learning_rate=1e38)
    assert ClassicArguments(output_dir="unused", learning_rate=1e30).learning_rate == 1e30
