"""Each classic recipe trains through the shared loop: loss falls, pictures and metrics appear, runs resume."""

import json

import pytest
import torch
from PIL import Image

from llmkit.classic.data import load_images
from llmkit.classic.diffusion import NoiseSchedule, UNet, sample
from llmkit.classic.generative import VAE, Generator
from llmkit.errors import UserError
from recipes import train_cnn, train_diffusion, train_gan, train_mlp, train_rnn, train_vae


def test_digits_cnn_beats_90_percent_and_saves_everything(cnn_dir):
    out, metrics = cnn_dir
    assert metrics["test_accuracy"] > 0.9
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert (out / "model.safetensors").is_file() and Image.open(out / "curves.png").size[0] > 100


def test_interrupted_run_resumes_from_its_last_epoch(tmp_path, capsys):
    train_cnn.main(["--output_dir", str(tmp_path), "--epochs", "2"])
    metrics = train_cnn.main(["--output_dir", str(tmp_path), "--epochs", "3"])
    assert "resuming from" in capsys.readouterr().out
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3] and metrics["epochs"] == 3


def test_transfer_learning_and_architecture_mismatch(cnn_dir, tmp_path):
    out, _ = cnn_dir
    metrics = train_cnn.main(["--output_dir", str(tmp_path / "ft"), "--init_from", str(out), "--freeze_features", "--epochs", "1"])
    assert metrics["test_accuracy"] > 0.85  # frozen pretrained features are already good
    with pytest.raises(UserError, match="holds a 'lenet' checkpoint, not 'resnet'"):
        train_cnn.main(["--output_dir", str(tmp_path / "x"), "--arch", "resnet", "--init_from", str(out)])


def test_mlp_numpy_and_torch(tmp_path):
    results = train_mlp.main(["--output_dir", str(tmp_path), "--epochs", "15"])
    assert results["numpy"]["test_accuracy"] > 0.9 and results["torch"]["test_accuracy"] > 0.85
    assert results["numpy"]["loss_per_epoch"][-1] < results["numpy"]["loss_per_epoch"][0]


def test_char_lstm_beats_the_unigram_baseline(tmp_path):
    metrics = train_rnn.main(["--output_dir", str(tmp_path), "--epochs", "2", "--max_chars", "100000", "--hidden", "128",
                              "--layers", "1", "--seq_len", "64"])
    assert metrics["val_loss"] < metrics["unigram_val_loss"]
    assert len((tmp_path / "sample.txt").read_text()) == 201


@pytest.mark.parametrize("recipe", [train_gan, train_vae, train_diffusion])
def test_generative_recipes_train_and_draw(recipe, cnn_dir, tmp_path):
    metrics = recipe.main(["--output_dir", str(tmp_path), "--epochs", "2", "--judge", str(cnn_dir[0])])
    assert 0 <= metrics["confident_share"] <= 1 and 0 <= metrics["class_coverage"] <= 1
    grid = Image.open(tmp_path / "samples-epoch-2.png")
    assert grid.size[0] > 200
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    key = "loss_d" if recipe is train_gan else "loss"
    assert history[-1][key] < history[0][key] or recipe is train_gan  # adversarial losses need not fall


def test_samples_have_the_right_shape_and_range():
    torch.manual_seed(0)
    images = Generator(z_dim=8, size=16).eval()(torch.randn(4, 8))
    assert images.shape == (4, 1, 16, 16) and images.min() >= 0 and images.max() <= 1
    assert VAE(size=16).sample(3).shape == (3, 1, 16, 16)
    out, steps = sample(UNet(width=8), NoiseSchedule(10, "linear"), 2, 16, method="ddpm", keep=5)
    assert out.shape == (2, 1, 16, 16) and out.min() >= 0 and out.max() <= 1 and len(steps) >= 5


def test_bad_data_is_refused(tmp_path):
    import numpy as np

    with pytest.raises(UserError, match="unknown dataset"):
        load_images("imagenet-22k")
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((3, 8, 8)))
    with pytest.raises(UserError, match="needs arrays x_train and y_train"):
        load_images(str(bad))
    with pytest.raises(UserError, match="expects images of shape"):
        from llmkit.classic.data import check_images

        check_images(torch.zeros(2, 3, 16, 16), 1, 16)


def test_idx_files_and_image_folders_load(tmp_path):
    import gzip

    import numpy as np
    from PIL import Image

    images = (np.random.default_rng(0).random((10, 8, 8)) * 255).astype(np.uint8)
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
    (tmp_path / "idx").mkdir()
    with gzip.open(tmp_path / "idx" / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(header + images.tobytes())
    (tmp_path / "idx" / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + bytes(range(10)))
    train, test, n_classes = load_images(str(tmp_path / "idx"))
    assert len(train) + len(test) == 10 and n_classes == 10 and train.tensors[0].shape[1:] == (1, 8, 8)

    for label in ("cat", "dog"):
        (tmp_path / "folder" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(images[i]).save(tmp_path / "folder" / label / f"{i}.png")
    train, test, n_classes = load_images(str(tmp_path / "folder"), size=16, test_fraction=0.34)
    assert n_classes == 2 and len(train) + len(test) == 6 and train.tensors[0].shape[1:] == (1, 16, 16)


def test_conditional_gan_and_rnn_classifier(cnn_dir, tmp_path):
    metrics = train_gan.main(["--output_dir", str(tmp_path / "cgan"), "--epochs", "1", "--conditional", "--judge", str(cnn_dir[0])])
    assert "confident_share" in metrics
    metrics = train_rnn.main(["--output_dir", str(tmp_path / "cls"), "--task", "classify", "--epochs", "6", "--hidden", "64",
                              "--layers", "1", "--cell", "gru", "--seq_len", "160", "--learning_rate", "5e-3"])
    history = json.loads((tmp_path / "cls" / "metrics.json").read_text())["history"]
    assert history[-1]["loss"] < history[0]["loss"] and metrics["test_accuracy"] > 0.3  # 5 areas: the largest is 26%
