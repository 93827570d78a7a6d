"""Pretrain a GPT-2-style model from scratch.

    accelerate launch recipes/pretrain_gpt2.py                       # tiny model, built-in corpus, CPU ok
    accelerate launch recipes/pretrain_gpt2.py --preset gpt2 --dataset_name HuggingFaceFW/fineweb-edu \
        --dataset_config_name sample-10BT --streaming --tokenizer_name gpt2 --max_steps 20000
    accelerate launch --config_file recipes/accelerate/cpu-ddp.yaml recipes/pretrain_gpt2.py --max_steps 20
    python recipes/pretrain_gpt2.py my_run.yaml                      # every flag can live in a config file

Every transformers TrainingArguments flag works (`--help` lists them all). Re-running with the same
--output_dir resumes from its last checkpoint.
"""

from llmkit.arguments import parse_args
from llmkit.data import DataArguments
from llmkit.errors import run_cli
from llmkit.lm import ModelArguments, PretrainingArguments, pretrain

TYPES = (DataArguments, ModelArguments, PretrainingArguments)


def main(argv: list[str] | None = None) -> dict:
    """Pretrain the model the flags describe; returns metrics.json's content."""
    data_args, model_args, training_args = parse_args(TYPES, argv)
    return pretrain(data_args, model_args, training_args)


if __name__ == "__main__":
    run_cli(main)
