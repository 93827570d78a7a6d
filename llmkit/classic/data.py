"""Data for the classic baselines: scikit-learn's digits built in; MNIST/Fashion-MNIST/CIFAR-10 by name; .npz files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from llmkit.errors import UserError
from llmkit.log import get_logger

logger = get_logger(__name__)

HUB_IMAGES = {
    "mnist": ("ylecun/mnist", "image", "label"),
    "fashion_mnist": ("zalando-datasets/fashion_mnist", "image", "label"),
    "cifar10": ("uoft-cs/cifar10", "img", "label"),
}


def load_images(
    name: str = "digits",
    size: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    *,
    min_classes: int = 1,
) -> tuple[TensorDataset, TensorDataset, int]:
    """(train, test, number of classes) of images in [0, 1] shaped (N, C, H, W): their own size unless `size` is given.

    A classifier passes min_classes=2: trained on one class it learns nothing and still scores 100%.
    """
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        # 1,797 real 8x8 scans, values 0-16
        x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        train, test = _split(x, torch.tensor(digits.target), test_fraction, seed)
    elif name in HUB_IMAGES:
        train, test = _hub_images(*HUB_IMAGES[name])
    elif name.endswith(".npz"):
        train, test = _npz(Path(name), test_fraction, seed)
    elif Path(name).is_dir():
        train, test = _local_folder(Path(name), test_fraction, seed)
    else:
        raise UserError(
            f"unknown dataset {name!r}: use digits, {', '.join(HUB_IMAGES)}, a .npz file with x_train/y_train"
            "[/x_test/y_test], a folder of IDX files (MNIST's format), or an image folder (one subfolder per class)."
        )
    if len(train[0]) == 0:
        raise UserError(f"the dataset {name} has no training images.")
    n_classes = int(max(train[1].max(), test[1].max() if len(test[1]) else 0)) + 1
    present = len(torch.unique(train[1]))
    if present < min_classes:
        raise UserError(
            f"the training images of {name} are of only {present} class(es): a classifier needs at least "
            f"{min_classes}. Add images of another class (for a folder: one subfolder per class)."
        )
    own = tuple(train[0].shape[-2:])
    if size:
        train, test = (resize(train[0], size), train[1]), (resize(test[0], size), test[1])
    logger.info(describe_images(train[0], own))
    return TensorDataset(*train), TensorDataset(*test), n_classes


def describe_images(images: torch.Tensor, own: tuple[int, int] | None = None) -> str:
    """One line on what a model will see: 'images: 3 channels (RGB), 32x32' (and the size they were resized from)."""
    kind = {1: "1 channel (grey)", 3: "3 channels (RGB)", 4: "4 channels (RGBA)"}
    channels, height, width = images.shape[1:]
    line = f"images: {kind.get(channels, f'{channels} channels')}, {height}x{width}"
    if own and own != (height, width):
        line += f" (resized from {own[0]}x{own[1]})"
    return line


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) images to size x size, kept in [0, 1]."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def check_images(images: torch.Tensor, channels: int, size: int, what: str = "model") -> None:
    """Fail clearly when images do not have the shape a model was built for."""
    if (
        images.dim() != 4
        or images.shape[1] != channels
        or images.shape[-1] != size
        or images.shape[-2] != size
    ):
        raise UserError(
            f"the {what} expects images of shape (N, {channels}, {size}, {size}), got {tuple(images.shape)}; "
            f"resize them (--image_size {size}) or build the model for this data."
        )


def _hub_images(repo: str, image_col: str, label_col: str):
    from datasets import load_dataset

    try:
        ds = load_dataset(repo)
    except Exception as err:
        raise UserError(
            f"could not load {repo} ({type(err).__name__}: {err}); offline, use --dataset digits or a .npz file."
        ) from None

    def tensors(split):
        x = np.stack([np.asarray(im, dtype=np.float32) / 255.0 for im in split[image_col]])
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return torch.from_numpy(x), torch.tensor(split[label_col])

    return tensors(ds["train"]), tensors(ds["test"])


def _npz(path: Path, test_fraction: float, seed: int):
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    try:
        data = np.load(path)
    except (OSError, ValueError) as err:
        raise UserError(f"{path} is not a readable .npz file ({err}); save it with numpy.savez.") from None
    if "x_train" not in data or "y_train" not in data:
        raise UserError(
            f"{path} needs arrays x_train and y_train (and optionally x_test, y_test); it has {list(data)}."
        )

    def pair(x_key: str, y_key: str):
        _check_npz_arrays(path, data, x_key, y_key)
        x = channels_first(torch.tensor(data[x_key], dtype=torch.float32), f"{path}: {x_key}")
        y = torch.tensor(data[y_key]).long().flatten()
        if len(y) != len(x):
            raise UserError(
                f"{path}: {y_key} has {len(y)} labels for {len(x)} images in {x_key}; give one label per image."
            )
        return (x / 255.0 if x.max() > 1 else x), y

    if "x_test" in data:
        return pair("x_train", "y_train"), pair("x_test", "y_test")
    return _split(*pair("x_train", "y_train"), test_fraction, seed)


def _check_npz_arrays(path: Path, data, x_key: str, y_key: str) -> None:
    """Pixels must be numbers and labels class ids 0, 1, 2, ... (else torch fails, or 0.7 silently becomes 0)."""
    x, y = data[x_key], data[y_key]
    if x.dtype.kind not in "biuf":
        raise UserError(
            f"{path}: {x_key} holds {x.dtype} values, not pixel numbers; save the images as numbers."
        )
    whole = y.dtype.kind in "biu" or (y.dtype.kind == "f" and bool(np.all(np.mod(y, 1) == 0)))
    if not whole or (y.size and y.min() < 0):
        shown = y.flatten()[:3].tolist()
        raise UserError(
            f"{path}: {y_key} holds {y.dtype} values such as {shown}; labels must be class ids 0, 1, 2, ...: "
            "map each class to a whole number from 0."
        )


def channels_first(x: torch.Tensor, what: str) -> torch.Tensor:
    """(N, H, W), (N, C, H, W) or channels-last (N, H, W, C) images -> (N, C, H, W); C is 1, 3 or 4."""
    if x.dim() == 3:
        return x[:, None]
    channel_counts = (1, 3, 4)
    if x.dim() == 4:
        first, last = x.shape[1] in channel_counts, x.shape[-1] in channel_counts
        if first and not last:
            return x
        if last and not first:  # NumPy / PIL / TensorFlow layout
            return x.permute(0, 3, 1, 2).contiguous()
        if first and last and x.shape[1] != x.shape[-1]:
            raise UserError(
                f"{what} has shape {tuple(x.shape)}, which reads as channels-first and channels-last alike; "
                "save it as (N, C, H, W), e.g. with x.transpose(0, 3, 1, 2) for (N, H, W, C) data."
            )
        if first and last:
            raise UserError(
                f"{what} has shape {tuple(x.shape)}: images of {x.shape[2]} pixels are too small to tell "
                "the channel axis; save them as (N, C, H, W)."
            )
    raise UserError(
        f"{what} has shape {tuple(x.shape)}; expected (N, H, W), (N, C, H, W) or (N, H, W, C) "
        "with C = 1, 3 or 4 channels."
    )


def _split(x: torch.Tensor, y: torch.Tensor, test_fraction: float, seed: int):
    n_test = int(len(x) * test_fraction)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return (x[order[n_test:]], y[order[n_test:]]), (x[order[:n_test]], y[order[:n_test]])


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the format MNIST ships in): magic, dimensions, then unsigned bytes."""
    import gzip

    try:
        raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    except (OSError, EOFError) as err:  # a cut .gz file ends before its end-of-stream marker
        raise UserError(
            f"{path} cannot be read ({err}); the file is damaged or truncated: download it again."
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{path} is not an IDX file of unsigned bytes.")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected, have = int(np.prod(dims)), len(raw) - 4 - 4 * ndim
    if have != expected:
        raise UserError(
            f"{path} is truncated or damaged: its header announces {'x'.join(map(str, dims))} = {expected:,} "
            f"bytes of data but it holds {max(have, 0):,}; download it again."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _local_folder(folder: Path, test_fraction: float, seed: int):
    """IDX files (train-images/train-labels[/t10k-...]) or an image folder with one subfolder per class."""
    idx = {p.name.split("-idx")[0].split(".")[0]: p for p in folder.iterdir() if "idx" in p.name}
    if "train-images" in idx and "train-labels" in idx:

        def pair(prefix):
            images, labels = read_idx(idx[f"{prefix}-images"]), read_idx(idx[f"{prefix}-labels"])
            if len(images) != len(labels):
                raise UserError(
                    f"{idx[f'{prefix}-labels']} has {len(labels):,} labels but {idx[f'{prefix}-images']} has "
                    f"{len(images):,} images; use the label file that belongs to these images."
                )
            x = torch.from_numpy(images.astype(np.float32) / 255.0)
            return (x[:, None] if x.dim() == 3 else x), torch.from_numpy(labels.astype(np.int64))

        train = pair("train")
        return (train, pair("t10k")) if "t10k-images" in idx else _split(*train, test_fraction, seed)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = [
        (f, i)
        for i, c in enumerate(classes)
        for f in sorted((folder / c).iterdir())
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise UserError(
            f"{folder} holds neither IDX files nor class subfolders with images ({', '.join(IMAGE_SUFFIXES)})."
        )
    arrays = [_read_image(f) for f, _ in files]
    sizes = {a.shape[:2] for a in arrays}
    if len(sizes) > 1:
        raise UserError(
            f"the images in {folder} have different sizes {sorted(sizes)[:3]}; resize them to one size."
        )
    # Colour is kept when any image has it (red and green of one brightness are the same grey); a folder of
    # grey images (or colour files that are grey throughout) stays one channel.
    colour = any(a.ndim == 3 and not (a == a[..., :1]).all() for a in arrays)
    x = torch.from_numpy(
        np.stack(
            [(a if a.ndim == 3 else np.repeat(a[..., None], 3, -1)) if colour else _grey(a) for a in arrays]
        )
    )
    x = x.permute(0, 3, 1, 2).contiguous() if colour else x[:, None]
    return _split(x, torch.tensor([label for _, label in files]), test_fraction, seed)


def _grey(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 2 else a[..., 0]  # an RGB image whose channels are all equal


GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def _read_image(path: Path) -> np.ndarray:
    """One image in [0, 1]: (H, W) grey levels, or (H, W, 3) RGB for a colour file; else a message naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            grey = im.mode in GREY_MODES
            return np.asarray(im.convert("L" if grey else "RGB"), dtype=np.float32) / 255.0
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
    ) as err:  # PIL raises SyntaxError for some broken headers
        raise UserError(
            f"{path} is not a readable image ({type(err).__name__}: {err}); remove it or replace it."
        ) from None


def make_2d(name: str, n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small 2-D classification set for watching an MLP learn: moons, circles, xor or spirals."""
    rng = np.random.default_rng(seed)
    if name in ("moons", "circles"):
        from sklearn.datasets import make_circles, make_moons

        maker = make_moons if name == "moons" else make_circles
        kwargs = {"noise": 0.15} if name == "moons" else {"noise": 0.08, "factor": 0.5}
        return maker(n_samples=n, random_state=seed, **kwargs)
    if name == "xor":
        x = rng.uniform(-1, 1, (n, 2))
        return x, ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(int)
    if name != "spirals":
        raise UserError(f"unknown 2-D dataset {name!r}; choose moons, circles, xor or spirals.")
    t = rng.uniform(0.25, 1, n)  # two interleaved spirals
    label = rng.integers(0, 2, n)
    angle = 4 * np.pi * t + np.pi * label
    return np.stack([t * np.cos(angle), t * np.sin(angle)], 1) + rng.normal(0, 0.03, (n, 2)), label


def _utf8_text(path: Path) -> str:
    """A file's UTF-8 text; binary data or another encoding is named (llmkit.data.filecheck's rule, without
    importing llmkit.data, which brings transformers)."""
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # was called a binary file, with no word of the fix
        raise UserError(
            f"{path} is UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8; convert it, e.g. "
            f"`iconv -f utf-16 -t utf-8 {path} > fixed.txt`."
        )
    if b"\0" in raw[:8192]:
        nul = raw.index(b"\0")
        raise UserError(
            f"{path} is a binary file (a NUL byte at offset {nul}), not text; pass a UTF-8 text file."
        )
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark (Windows editors write one) is not a character
    except UnicodeDecodeError as err:
        raise UserError(
            f"{path} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); convert it, e.g. "
            f"`iconv -f latin1 -t utf-8 {path} > fixed.txt`."
        ) from None


def load_text(path: str | None = None, max_chars: int | None = None) -> str:
    """A text file's contents, or the built-in CPython documentation corpus."""
    if path:
        if not Path(path).is_file():
            raise UserError(f"{path} does not exist; pass a text file or omit it for the built-in corpus.")
        text = _utf8_text(Path(path))
    else:
        from llmkit.data.builtin import builtin_texts

        text = "\n\n".join(builtin_texts())
    if not text.strip():
        raise UserError(f"{path or 'the corpus'} is empty.")
    return text[:max_chars] if max_chars else text
