"""Fine-tuning: encoders (classification, tagging), T5 (text-to-text) and causal LMs, fully or with LoRA."""

from llmkit.finetune.classify import ClassificationArguments, finetune_classifier, label_probabilities
from llmkit.finetune.common import (
    FinetuneCausalArguments,
    FinetuneModelArguments,
    FinetuneSeq2SeqArguments,
    FinetuneTrainingArguments,
)
from llmkit.finetune.data import FinetuneDataArguments
from llmkit.finetune.lora import LoraArguments

# The arguments every fine-tuning recipe takes between its task's and its TrainingArguments.
SHARED_ARGUMENTS = (FinetuneDataArguments, FinetuneModelArguments, LoraArguments)

__all__ = [
    "SHARED_ARGUMENTS",
    "ClassificationArguments",
    "FinetuneDataArguments",
    "FinetuneModelArguments",
    "FinetuneSeq2SeqArguments",
    "FinetuneCausalArguments",
    "FinetuneTrainingArguments",
    "LoraArguments",
    "finetune_classifier",
    "label_probabilities",
]
