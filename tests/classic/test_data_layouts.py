"""Data that is laid out or stored differently: channels-last arrays, labels that are not class ids, text
that is binary, another encoding or has a byte-order mark, broken image folders and IDX files."""

import gzip

import numpy as np
import pytest
import torch

from llmkit.classic.data import load_images
from llmkit.errors import UserError
from llmkit.recipes import train_cnn


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
