"""Fine-tune an object detector (DETR, Conditional DETR, RT-DETR, YOLOS, ...) on COCO folders or a Hub dataset.

    accelerate launch recipes/finetune_detection.py      # offline: a tiny RT-DETR on generated digit canvases
    accelerate launch recipes/finetune_detection.py --model_name_or_path PekingU/rtdetr_r18vd --train_dir boxes/ \\
        --ignore_mismatched_sizes
    accelerate launch recipes/finetune_detection.py --model_name_or_path facebook/detr-resnet-50 \\
        --dataset_name cppe-5 --ignore_mismatched_sizes

--train_dir (and --validation_dir, --test_dir) is a COCO folder: the images and an annotations.json whose boxes
are [x, y, width, height] in pixels. A Hub dataset has the cppe-5 columns: image, objects{bbox, category}.
Every transformers TrainingArguments flag works (`--help`), and `--config FILE`.
"""

from llmkit.arguments import parse_args
from llmkit.errors import run_cli
from llmkit.finetune import FinetuneDataArguments, FinetuneModelArguments
from llmkit.vision.detect import DetectionModelArguments, DetectionTrainingArguments, finetune_detection
from llmkit.vision.detect_data import NOT_FOR_DETECTION, DetectionDataArguments

TYPES = (
    FinetuneDataArguments,
    DetectionDataArguments,
    FinetuneModelArguments,
    DetectionModelArguments,
    DetectionTrainingArguments,
)


def main(argv: list[str] | None = None) -> dict:
    """Fine-tune as the flags describe; returns metrics.json's content."""
    return finetune_detection(parse_args(TYPES, argv, hide=NOT_FOR_DETECTION))


if __name__ == "__main__":
    run_cli(main)
