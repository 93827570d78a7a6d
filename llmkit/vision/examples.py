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
