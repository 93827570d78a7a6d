"""The image page: class probabilities, boxes drawn with labels and scores, or a mask overlay with a legend.

It serves any image model folder whose config names a classification, detection or semantic segmentation head
(finetune-image / finetune-detection / finetune-segmentation output, or a Hugging Face checkpoint), through the
same `pipeline(...)` a user would call.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np

from llmkit.errors import UserError
from llmkit.vision.tasks import image_task

TAB_NAMES = {
    "image-classification": "Classify an image",
    "object-detection": "Detect objects",
    "image-segmentation": "Segment an image",
}
EXAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# Larger uploads are shrunk first: the models resize to a few hundred pixels anyway, and a full-size
# mask per class of a 50-megapixel photo would take gigabytes to draw.
MAX_SIDE = 1024


def example_images(model_dir: str | Path) -> list[str]:
    """The images saved in the folder's examples/ (the recipes keep a few validation images there)."""
    folder = Path(model_dir) / "examples"
    return sorted(str(p) for p in folder.glob("*") if p.suffix.lower() in EXAMPLE_SUFFIXES)[:8]


def _rgb(image):
    """The upload as RGB (grey, palette and RGBA images too), at most MAX_SIDE pixels on its long side."""
    image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image


def classify_image(pipe, image) -> dict[str, float]:
    """Every label's probability for one image."""
    if image is None:
        return {}
    scores = pipe(_rgb(image), top_k=len(pipe.model.config.id2label))
    return {s["label"]: float(s["score"]) for s in scores}


def detect_objects(pipe, image, threshold: float):
    """The image with each box above `threshold` as an annotation labelled "label score"."""
    if image is None:
        return None
    image = _rgb(image)
    found = pipe(image, threshold=float(threshold))
    boxes = [
        (
            (d["box"]["xmin"], d["box"]["ymin"], d["box"]["xmax"], d["box"]["ymax"]),
            f"{d['label']} {d['score']:.2f}",
        )
        for d in sorted(found, key=lambda d: -d["score"])
    ]
    return image, boxes


def segment_image(pipe, image):
    """The image with a half-transparent mask per class the model finds in it (the background class left clear)."""
    if image is None:
        return None
    image = _rgb(image)
    found = [s for s in pipe(image, subtask="semantic") if str(s["label"]).lower() != "background"]
    return image, [(np.asarray(s["mask"], dtype=np.float32) / 255.0 * 0.6, s["label"]) for s in found]


def image_tab(model_dir: str) -> None:
    """A tab that runs the folder's image model on an uploaded or example image and draws the result."""
    from transformers import pipeline

    task = image_task(model_dir)
    try:
        pipe = pipeline(task, model=model_dir, device="cpu")
    except Exception as err:  # a weights file cut short was safetensors' traceback at the app's start
        from llmkit.record import weights_problem

        damaged = weights_problem(Path(model_dir))
        why = f"{damaged} (a save or copy cut short)" if damaged else f"{type(err).__name__}: {err}"
        raise UserError(
            f"{model_dir}: its {task} model could not be loaded: {why}; copy the folder again, or pass one of "
            "its complete checkpoint-N folders."
        ) from None
    examples = example_images(model_dir)
    labels = list(pipe.model.config.id2label.values())
    with gr.Tab(TAB_NAMES[task]):
        gr.Markdown(
            f"`{model_dir}` ({task}, {len(labels)} labels: {', '.join(map(str, labels[:12]))}"
            f"{' …' if len(labels) > 12 else ''}). Upload an image or pick an example."
        )
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="pil", label="Image", elem_id=f"{task}-input", height=320)
                # 0.3, not pipeline's 0.5: the tiny offline RT-DETR scores its right boxes 0.3-0.5.
                threshold = gr.Slider(
                    0, 1, value=0.3, step=0.05, label="Score threshold", visible=task == "object-detection"
                )
                go = gr.Button("Run", variant="primary", elem_id=f"{task}-go")
            with gr.Column():
                if task == "image-classification":
                    result = gr.Label(label="Labels", num_top_classes=10, elem_id=f"{task}-output")
                else:
                    result = gr.AnnotatedImage(
                        label="Boxes" if task == "object-detection" else "Masks",
                        show_legend=True,
                        height=320,
                        elem_id=f"{task}-output",
                    )
        if examples:
            gr.Examples(examples, image, label="Examples from the run's validation images")
        if task == "image-classification":
            go.click(_noticed(lambda im: classify_image(pipe, im)), image, result, api_name="classify_image")
        elif task == "object-detection":
            go.click(
                _noticed(lambda im, t: detect_objects(pipe, im, t)),
                [image, threshold],
                result,
                api_name="detect",
            )
        else:
            go.click(_noticed(lambda im: segment_image(pipe, im)), image, result, api_name="segment")


def _noticed(run):
    """`run` as an event handler that says on the page when no image was given (Run seemed to do nothing)."""

    def handler(image, *rest):
        if image is None:
            gr.Warning("Upload an image or pick an example first.")
        return run(image, *rest)

    return handler
