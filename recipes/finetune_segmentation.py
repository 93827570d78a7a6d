"""Fine-tune a semantic segmentation model (SegFormer and friends) on image + mask folders or a Hub dataset.

    accelerate launch recipes/finetune_segmentation.py     # offline: a tiny SegFormer on generated digit canvases
    accelerate launch recipes/finetune_segmentation.py --model_name_or_path nvidia/mit-b0 --train_dir fields/ \\
        --test_dir fields-test/
    accelerate launch recipes/finetune_segmentation.py --model_name_or_path nvidia/mit-b0 \\
        --dataset_name scene_parse_150 --reduce_labels

--train_dir holds images/ and masks/ (masks/NAME.png: the class id of each pixel of images/NAME.*, 255 = ignore)
and an id2label.json (there or in the folder above). Every transformers TrainingArguments flag works (`--help`),
and `--config FILE`. The output folder loads with `pipeline("image-segmentation", model=OUTPUT_DIR)`.
"""

from llmkit.arguments import parse_args
from llmkit.errors import run_cli
from llmkit.finetune import FinetuneModelArguments
from llmkit.vision.segment import SegmentModelArguments, SegmentTrainingArguments, finetune_segmentation
from llmkit.vision.segment_data import SegmentDataArguments

TYPES = (SegmentDataArguments, FinetuneModelArguments, SegmentModelArguments, SegmentTrainingArguments)


def main(argv: list[str] | None = None) -> dict:
    """Fine-tune as the flags describe; returns metrics.json's content."""
    return finetune_segmentation(parse_args(TYPES, argv))


if __name__ == "__main__":
    run_cli(main)
