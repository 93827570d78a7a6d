"""Fine-tune T5 on text-to-text pairs (summarization, translation, ...), fully or with LoRA.

    accelerate launch recipes/finetune_t5.py             # offline: a small T5 from scratch, docstring -> summary line
    accelerate launch recipes/finetune_t5.py --model_name_or_path t5-small --dataset_name cnn_dailymail \
        --dataset_config_name 3.0.0 --text_column article --target_column highlights
    accelerate launch recipes/finetune_t5.py --model_name_or_path t5-small --train_file pairs.jsonl \
        --text_column en --target_column de --source_prefix "translate English to German: " --use_lora
"""

from llmkit.arguments import parse_args
from llmkit.errors import run_cli
from llmkit.finetune import SHARED_ARGUMENTS, FinetuneSeq2SeqArguments
from llmkit.finetune.seq2seq import Seq2SeqArguments, finetune_seq2seq

TYPES = (Seq2SeqArguments, *SHARED_ARGUMENTS, FinetuneSeq2SeqArguments)

# shared data flags this recipe reads nothing from: accepted, they were silently ignored
NOT_USED = ("label_column",)


def main(argv: list[str] | None = None) -> dict:
    """Fine-tune as the flags describe; returns metrics.json's content."""
    return finetune_seq2seq(parse_args(TYPES, argv, hide=NOT_USED))


if __name__ == "__main__":
    run_cli(main)
