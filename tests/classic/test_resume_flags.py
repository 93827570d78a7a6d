"""Resuming a classic run with a changed flag: a flag the checkpoint would override is refused, not ignored."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from llmkit.classic.arguments import ClassicArguments
from llmkit.classic.loop import fit
from llmkit.errors import UserError


def _linear_run(
    out,
    *,
    epochs: int = 1,
    learning_rate: float = 0.05,
    batch_size: int = 16,
    data_seed: int = 1,
    schedule: str = "cosine",
) -> tuple[dict, nn.Module]:
    """A linear classifier on 64 random points (4 steps per epoch in batches of 16), Adam at `learning_rate`."""
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    data = TensorDataset(
        torch.randn(64, 4, generator=torch.Generator().manual_seed(data_seed)), torch.arange(64) % 2
    )
    args = ClassicArguments(
        output_dir=str(out),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        seed=0,
    )

    def step(mods, batch, update):
        loss = F.cross_entropy(mods["model"](batch[0]), batch[1])
        update("model", loss)
        return {"loss": loss.detach()}

    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    metrics = fit(
        args,
        {"model": model},
        {"model": optimizer},
        step,
        train=data,
        config={"architecture": "linear", "beta_schedule": schedule},
    )
    return metrics, model


def test_resuming_with_another_learning_rate_is_refused_not_ignored(tmp_path):
    _linear_run(tmp_path, epochs=1, learning_rate=0.05)
    # the checkpoint's optimizer state set the rate back to 0.05: epoch 2 trained at 0.05, config.json said 0.5
    with pytest.raises(
        UserError, match=r"--learning_rate 0.5: the run was trained with 0.05.*--learning_rate 0.05"
    ):
        _linear_run(tmp_path, epochs=2, learning_rate=0.5)
    assert _linear_run(tmp_path, epochs=2, learning_rate=0.05)[0]["global_step"] == 8


def test_a_checkpoint_saved_mid_epoch_refuses_another_batch_size(tmp_path, monkeypatch):
    from llmkit.classic import loop

    # Ctrl-C at step 1 of 4: the checkpoint holds "1 batch of 16 done" of epoch 1
    monkeypatch.setattr(loop, "_stop_requested", lambda accelerator, interrupt: True)
    with pytest.raises(KeyboardInterrupt):
        _linear_run(tmp_path, batch_size=16)
    monkeypatch.undo()
    assert (tmp_path / "checkpoints" / "checkpoint-1").is_dir()
    # resumed with batches of 8 it skipped 1 batch of 8: 8 examples trained twice, in silence
    with pytest.raises(UserError, match=r"middle of epoch 1 with 16 x 1.*--per_device_train_batch_size 16"):
        _linear_run(tmp_path, batch_size=8)
    assert _linear_run(tmp_path, batch_size=16)[0]["global_step"] == 4
    # from an epoch's end another batch size is fine
    assert _linear_run(tmp_path, epochs=2, batch_size=8)[0]["global_step"] == 12


def test_resuming_on_other_training_data_is_refused(tmp_path):
    _linear_run(tmp_path, epochs=1)
    # another --dataset of the same shape trained on in silence: epoch 1's figures were the old data's
    with pytest.raises(
        UserError, match=r"trained on other data \(64 training examples, this run has 64 with other"
    ):
        _linear_run(tmp_path, epochs=2, data_seed=2)
    assert _linear_run(tmp_path, epochs=2)[0]["global_step"] == 8


def test_resuming_with_other_model_settings_whose_weights_still_load_is_refused(tmp_path):
    _linear_run(tmp_path, epochs=1)
    # train-diffusion --beta_schedule linear on a cosine run's checkpoint: same U-Net, other noise, in silence
    with pytest.raises(UserError, match=r"trained with other settings \(beta_schedule cosine -> linear\)"):
        _linear_run(tmp_path, epochs=2, schedule="linear")
    assert _linear_run(tmp_path, epochs=2)[0]["global_step"] == 8


def test_a_dbn_resumed_with_other_rbm_settings_is_refused_before_the_rbms_retrain(tmp_path):
    import numpy as np

    from llmkit.recipes import train_dbn

    images = np.random.default_rng(0).random((64, 8, 8, 1), dtype=np.float32)
    np.savez(tmp_path / "tiny.npz", x_train=images, y_train=np.arange(64) % 2)
    argv = ["--dataset", str(tmp_path / "tiny.npz"), "--output_dir", str(tmp_path / "dbn"), "--hidden", "8"]
    argv += ["--pretrain_epochs", "1", "--num_train_epochs", "1"]
    tmp_path = tmp_path / "dbn"
    train_dbn.main(argv)
    saved = (tmp_path / "dbn.safetensors").read_bytes(), (tmp_path / "filters.png").read_bytes()
    # the classifier resumed from the old RBMs while dbn.safetensors and rbm_history described the new ones
    with pytest.raises(UserError, match=r"trained with other settings \(rbm .*'cd_k': 1.* -> .*'cd_k': 2"):
        train_dbn.main([*argv, "--cd_k", "2"])
    assert ((tmp_path / "dbn.safetensors").read_bytes(), (tmp_path / "filters.png").read_bytes()) == saved
    assert train_dbn.main(argv)["train_loss"] is None  # the same flags resume: nothing left to train
