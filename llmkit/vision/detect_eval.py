"""Scoring detections with pycocotools (COCO mAP, mAP@50, mAP@75, per-class AP) and drawing them on images."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from transformers import Trainer

from llmkit.errors import require

# Detections below this score are not drawn (every one is scored: mAP ranks them all).
DRAW_THRESHOLD, DRAW_MOST = 0.25, 3


def coco_scores(
    detections: list[dict], truths: list[dict], labels: list[str], *, class_agnostic: bool = False
) -> dict:
    """COCO box scores of detections against ground truth, both as one dict per image.

    Each dict holds "boxes" ([x0, y0, x1, y1] pixels) and "labels" (class indices); detections also "scores".
    Returns map, map_50, map_75 and ap_<label> per class (-1 for a class absent from the ground truth);
    class_agnostic scores the boxes alone (any class matches any), without per-class figures.
    """
    coco_module = require("pycocotools.coco", "vision")
    cocoeval = require("pycocotools.cocoeval", "vision")
    images, gt, dt = [], [], []
    for i, (det, truth) in enumerate(zip(detections, truths)):
        images.append({"id": i})
        for box, label in zip(_rows(truth["boxes"]), _rows(truth["labels"])):
            gt.append(_entry(len(gt) + 1, i, box, label, area=True))
        for box, label, score in zip(_rows(det["boxes"]), _rows(det["labels"]), _rows(det["scores"])):
            dt.append({**_entry(len(dt) + 1, i, box, label), "score": float(score)})
    if not gt:
        return {"map": -1.0, "map_50": -1.0, "map_75": -1.0}
    truth_api = coco_module.COCO()
    truth_api.dataset = {
        "images": images,
        "annotations": gt,
        "categories": [{"id": i, "name": n} for i, n in enumerate(labels)],
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and its table
        truth_api.createIndex()
        if not dt:
            return {"map": 0.0, "map_50": 0.0, "map_75": 0.0, **{f"ap_{n}": 0.0 for n in labels}}
        found = truth_api.loadRes(dt)
        run = cocoeval.COCOeval(truth_api, found, "bbox")
        run.params.useCats = int(not class_agnostic)
        run.evaluate()
        run.accumulate()
        run.summarize()
    stats = run.stats
    scores = {"map": float(stats[0]), "map_50": float(stats[1]), "map_75": float(stats[2])}
    if class_agnostic:
        return scores
    # precision[iou threshold, recall, class, area range (0 = all), max detections (-1 = 100)]
    precision = run.eval["precision"][:, :, :, 0, -1]
    per_class = {}
    for k, name in enumerate(labels):
        values = precision[:, :, k]
        per_class[f"ap_{name}"] = float(values[values > -1].mean()) if (values > -1).any() else -1.0
    return {**scores, **per_class}


def _rows(values) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _entry(ann_id: int, image: int, box, label, *, area: bool = False) -> dict:
    x0, y0, x1, y1 = (float(v) for v in box)
    entry = {"id": ann_id, "image_id": image, "category_id": int(label), "bbox": [x0, y0, x1 - x0, y1 - y0]}
    if area:
        entry.update(area=(x1 - x0) * (y1 - y0), iscrowd=0)
    return entry


def pack_targets(targets: list[dict]) -> torch.Tensor:
    """A batch's label dicts as one tensor [batch, 1 + most boxes, 5], so the Trainer can pad, gather and cut it.

    Row 0 of each image holds (height, width, box count, 0, 0) of the original image; the next rows (class, cx, cy,
    w, h) with boxes normalised as the processor gives them; the rest is padding (-1). As dicts, the Trainer would
    cut every array in them to the number of validation images (and fail to gather them across processes).
    """
    most = max((len(t["class_labels"]) for t in targets), default=0)
    packed = torch.full((len(targets), 1 + most, 5), -1.0)
    for i, t in enumerate(targets):
        n = len(t["class_labels"])
        packed[i, 0] = torch.tensor([*(float(v) for v in t["orig_size"]), n, 0, 0])
        if n:
            packed[i, 1 : 1 + n, 0] = t["class_labels"].float()
            packed[i, 1 : 1 + n, 1:] = t["boxes"].float()
    return packed


def unpack_targets(packed) -> list[dict]:
    """pack_targets' tensor back to one dict per image: pixel [x0, y0, x1, y1] "boxes", "labels" and its "size"."""
    out = []
    for rows in torch.as_tensor(packed, dtype=torch.float32):
        height, width, n = float(rows[0, 0]), float(rows[0, 1]), int(rows[0, 2])
        cx, cy, w, h = rows[1 : 1 + n, 1:].unbind(-1)
        boxes = torch.stack(
            [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], -1
        )
        out.append({"boxes": boxes, "labels": rows[1 : 1 + n, 0].long(), "size": (int(height), int(width))})
    return out


def metrics_function(processor, labels: list[str]) -> Callable:
    """compute_metrics for a Trainer whose predictions are (logits, pred_boxes) per batch (see DetectionTrainer)."""

    def compute(prediction) -> dict:
        detections, truths = [], []
        for (logits, boxes), packed in zip(prediction.predictions, prediction.label_ids):
            targets = unpack_targets(packed)
            truths += targets
            outputs = SimpleNamespace(logits=torch.as_tensor(logits), pred_boxes=torch.as_tensor(boxes))
            detections += processor.post_process_object_detection(
                outputs, threshold=0.0, target_sizes=[t["size"] for t in targets]
            )
        return coco_scores(detections, truths, labels)

    return compute


class DetectionTrainer(Trainer):
    """A Trainer whose evaluation keeps just the class logits and boxes of each batch, and its labels in one tensor.

    Detectors return many more outputs (auxiliary and intermediate ones), in an order that differs by family;
    naming the two the metric needs keeps evaluation the same for DETR, Conditional DETR, RT-DETR and YOLOS.
    """

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """The loss, then (logits, pred_boxes) and the labels packed by pack_targets."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            outputs = model(**inputs)
        loss = outputs.loss.detach() if outputs.loss is not None else None
        if prediction_loss_only:
            return loss, None, None
        found = (outputs.logits.detach(), outputs.pred_boxes.detach())
        # on the model's device, as Trainer's gathering across processes expects (NCCL takes no CPU tensors)
        packed = pack_targets([{k: v.cpu() for k, v in t.items()} for t in inputs["labels"]])
        return loss, found, packed.to(outputs.logits.device)


def draw_detections(image, detections: dict, labels: list[str], *, truth: dict | None = None):
    """The image with its ground-truth boxes (green) and the detections above DRAW_THRESHOLD (red, label and score)."""
    draw_module = require("PIL.ImageDraw", "vision")
    image = image.convert("RGB")
    scale = max(1, 256 // max(image.size))  # small canvases are drawn larger, so the labels stay readable
    image = image.resize((image.width * scale, image.height * scale))
    draw = draw_module.Draw(image)
    for box in _rows((truth or {}).get("boxes", [])):
        draw.rectangle([v * scale for v in box], outline=(0, 170, 0), width=2)
    found = zip(_rows(detections["boxes"]), _rows(detections["labels"]), _rows(detections["scores"]))
    drawn: list[tuple] = []
    for box, label, score in sorted(found, key=lambda d: -d[2]):
        # RT-DETR ranks (query, class) pairs: one box can come back under several classes; its best one is drawn
        key = tuple(round(v) for v in box)
        if score >= DRAW_THRESHOLD and key not in drawn and len(drawn) < DRAW_MOST:
            drawn.append(key)
            x0, y0, x1, y1 = (v * scale for v in box)
            draw.rectangle([x0, y0, x1, y1], outline=(220, 0, 0), width=2)
            draw.text((x0 + 2, max(0, y0 - 11)), f"{labels[int(label)]} {score:.2f}", fill=(220, 0, 0))
    return image


def save_prediction_grid(images: list, path: str | Path, *, columns: int = 4) -> Path:
    """Tile drawn images (same size) into one picture."""
    pil = require("PIL.Image", "vision")
    width, height = max(i.width for i in images), max(i.height for i in images)
    rows = (len(images) + columns - 1) // columns
    grid = pil.new("RGB", (columns * width, rows * height), (255, 255, 255))
    for k, image in enumerate(images):
        grid.paste(image, ((k % columns) * width, (k // columns) * height))
    grid.save(path)
    return Path(path)


def score_with_pipeline(model_dir: str | Path, coco_dir: str | Path, *, class_agnostic: bool = False) -> dict:
    """Run pipeline("object-detection") from a saved folder on a COCO folder's images; return coco_scores."""
    from transformers import pipeline

    from llmkit.vision.detect_data import read_coco

    rows, categories = read_coco(Path(coco_dir), "folder")
    detector = pipeline("object-detection", model=str(model_dir))
    names = [n for _, n in sorted(categories.items())]
    index = {cid: i for i, cid in enumerate(sorted(categories))}
    detections, truths = [], []
    for row in rows:
        found = detector(row["image"], threshold=0.0)
        detections.append(
            {
                "boxes": np.array([[d["box"][k] for k in ("xmin", "ymin", "xmax", "ymax")] for d in found]),
                "labels": [names.index(d["label"]) if d["label"] in names else -1 for d in found],
                "scores": [d["score"] for d in found],
            }
        )
        truths.append(
            {
                "boxes": [[x, y, x + w, y + h] for x, y, w, h in row["objects"]["bbox"]],
                "labels": [index[c] for c in row["objects"]["category"]],
            }
        )
    return coco_scores(detections, truths, names, class_agnostic=class_agnostic)
