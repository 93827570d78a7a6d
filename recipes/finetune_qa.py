"""Fine-tune a BERT-family encoder for extractive question answering (SQuAD v1 and v2), fully or with LoRA.

    accelerate launch recipes/finetune_qa.py                      # offline: MiniLM on the built-in QA set
    accelerate launch recipes/finetune_qa.py --config recipes/configs/finetune-qa.yaml   # the reader for RAG
    accelerate launch recipes/finetune_qa.py --model_name_or_path bert-base-uncased --dataset_name squad_v2
    accelerate launch recipes/finetune_qa.py --train_file train.json --validation_file dev.json --use_lora

Data: the official SQuAD JSON, JSONL rows {id, title, context, question, answers{text, answer_start}}, or a Hub
dataset. Every transformers TrainingArguments flag works (`--help`), and a YAML/JSON config file as the only argument.
"""

from llmkit.arguments import parse_args
from llmkit.errors import run_cli
from llmkit.finetune import FinetuneDataArguments, FinetuneModelArguments, LoraArguments
from llmkit.finetune.qa import QuestionAnsweringTrainingArguments, finetune_qa
from llmkit.finetune.qa_spans import QuestionAnsweringArguments

TYPES = (
    QuestionAnsweringArguments,
    FinetuneDataArguments,
    FinetuneModelArguments,
    LoraArguments,
    QuestionAnsweringTrainingArguments,
)

# it generates no text: a target length was accepted and silently ignored
NOT_USED = ("max_target_length",)


def main(argv: list[str] | None = None) -> dict:
    """Fine-tune as the flags describe; returns metrics.json's content."""
    return finetune_qa(parse_args(TYPES, argv, hide=NOT_USED))


if __name__ == "__main__":
    run_cli(main)
