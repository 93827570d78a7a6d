"""Which image task a model folder serves, read from its config (no model, no Gradio loaded)."""

from __future__ import annotations

import json
from pathlib import Path

from llmkit.errors import UserError

# The architecture suffix in config.json -> the pipeline task that serves it.
IMAGE_TASKS = {
    "ForImageClassification": "image-classification",
    "ForObjectDetection": "object-detection",
    "ForSemanticSegmentation": "image-segmentation",
}


def image_task(model_dir: str | Path) -> str:
    """The pipeline task of an image model folder, from the architectures its config.json names."""
    config_file = Path(model_dir) / "config.json"
    try:
        architectures = json.loads(config_file.read_text()).get("architectures") or []
    except (OSError, ValueError):
        raise UserError(
            f"{model_dir} is not a model folder (no readable config.json); pass a recipe's output_dir."
        ) from None
    for name in architectures:
        for suffix, task in IMAGE_TASKS.items():
            if name.endswith(suffix):
                return task
    raise UserError(
        f"{model_dir} holds a {' / '.join(architectures) or 'model without architectures'}, not an image "
        "classifier, detector or segmenter; pass a finetune-image, finetune-detection or finetune-segmentation output."
    )
