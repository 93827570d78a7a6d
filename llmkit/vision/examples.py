"""A few validation images kept in the run folder's examples/, so the image page and a Space have inputs to offer."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = "examples"


def save_examples(split, out_dir: str | Path, *, n: int = 4) -> list[Path]:
    """Write the first `n` images of a dataset split (an "image" column) as PNGs under out_dir/examples/."""
    folder = Path(out_dir) / EXAMPLES
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(min(n, len(split))):
        path = folder / f"example-{i}.png"
        split[i]["image"].convert("RGB").save(path)
        written.append(path)
    return written


def example_path(validation) -> str:
    """A validation image's file for the model card's usage snippet (a placeholder for in-memory Hub images)."""
    from datasets import Image as ImageFeature

    first = validation.cast_column("image", ImageFeature(decode=False))[0]["image"]
    path = first.get("path") if isinstance(first, dict) else None
    return str(Path(path).resolve()) if path and Path(path).is_file() else "path/to/image.png"
