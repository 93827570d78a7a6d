"""Pretrained vision models with Hugging Face Auto classes: image classification by transfer learning,
object detection and semantic segmentation (data formats, transforms, metrics, generated offline data)."""
