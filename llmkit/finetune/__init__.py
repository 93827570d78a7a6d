"""Fine-tuning: encoders (classification, tagging), T5 (text-to-text) and causal LMs, fully or with LoRA."""

from llmkit.finetune.classify import ClassificationArguments, finetune_classifier, label_probabilities
from llmkit.finetune.common import FinetuneModelArguments, FinetuneSeq2SeqArguments, FinetuneTrainingArguments
from llmkit.finetune.data import FinetuneDataArguments
from llmkit.finetune.lora import LoraArguments

__all__ = [
    "ClassificationArguments",
    "FinetuneDataArguments",
    "FinetuneModelArguments",
    "FinetuneSeq2SeqArguments",
    "FinetuneTrainingArguments",
    "LoraArguments",
    "finetune_classifier",
    "label_probabilities",
]
