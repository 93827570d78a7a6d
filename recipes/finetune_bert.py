"""Fine-tune a BERT-family encoder for text classification or token tagging (fully or with LoRA).

    accelerate launch recipes/finetune_bert.py                     # offline: MiniLM on the built-in sample
    accelerate launch recipes/finetune_bert.py --model_name_or_path bert-base-uncased --dataset_name imdb
    accelerate launch recipes/finetune_bert.py --task token --dataset_name conll2003 --label_column ner_tags
    accelerate launch recipes/finetune_bert.py --train_file data.csv --text_column review --label_column stars --use_lora

Every transformers TrainingArguments flag works (`--help`), and a YAML/JSON config file as the only argument.
"""

from llmkit.arguments import parse_args
from llmkit.errors import run_cli
from llmkit.finetune import (
    SHARED_ARGUMENTS,
    ClassificationArguments,
    FinetuneTrainingArguments,
    finetune_classifier,
)

TYPES = (ClassificationArguments, *SHARED_ARGUMENTS, FinetuneTrainingArguments)

# shared data flags this recipe reads nothing from: accepted, they were silently ignored
NOT_USED = ("target_column", "max_target_length")


def main(argv: list[str] | None = None) -> dict:
    """Fine-tune as the flags describe; returns metrics.json's content."""
    return finetune_classifier(parse_args(TYPES, argv, hide=NOT_USED))


if __name__ == "__main__":
    run_cli(main)
