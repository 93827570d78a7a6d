"""Fine-tune a pretrained image classifier by transfer learning (fully, frozen backbone, or LoRA).

    accelerate launch recipes/finetune_image.py      # offline: a tiny ResNet on generated digit canvases
    accelerate launch recipes/finetune_image.py --model_name_or_path google/vit-base-patch16-224-in21k --train_dir pets/
    accelerate launch recipes/finetune_image.py --model_name_or_path microsoft/resnet-50 --dataset_name beans \\
        --ignore_mismatched_sizes --freeze_backbone
    accelerate launch recipes/finetune_image.py --train_file images.csv --label_column species --use_lora

--train_dir holds one sub-folder of images per class; --train_file is a CSV/JSONL of image paths (relative to
the file) and labels. Every transformers TrainingArguments flag works (`--help`), and `--config FILE`.
"""

from llmkit.arguments import parse_args
from llmkit.errors import run_cli
from llmkit.finetune import FinetuneDataArguments, FinetuneModelArguments, LoraArguments
from llmkit.vision.classify import ImageModelArguments, ImageTrainingArguments, finetune_image
from llmkit.vision.data import TEXT_ONLY, ImageDataArguments

TYPES = (
    FinetuneDataArguments,
    ImageDataArguments,
    FinetuneModelArguments,
    ImageModelArguments,
    LoraArguments,
    ImageTrainingArguments,
)


def main(argv: list[str] | None = None) -> dict:
    """Fine-tune as the flags describe; returns metrics.json's content."""
    return finetune_image(parse_args(TYPES, argv, hide=TEXT_ONLY))


if __name__ == "__main__":
    run_cli(main)
