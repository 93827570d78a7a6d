"""Continue training a causal LM (your pretrained GPT-2, or any Hub model) on text or prompt/response pairs.

    accelerate launch recipes/finetune_gpt2.py                 # runs/gpt2-tiny on built-in docstring -> summary pairs
    accelerate launch recipes/finetune_gpt2.py --model_name_or_path gpt2 --train_file chats.jsonl \
        --text_column prompt --target_column response --use_lora       # loss on the responses only
    accelerate launch recipes/finetune_gpt2.py --model_name_or_path runs/gpt2-tiny --train_file notes.txt   # plain text
"""

from llmkit.arguments import parse_args
from llmkit.errors import run_cli
from llmkit.finetune import SHARED_ARGUMENTS, FinetuneCausalArguments
from llmkit.finetune.causal import CausalArguments, finetune_causal

TYPES = (CausalArguments, *SHARED_ARGUMENTS, FinetuneCausalArguments)

# shared data flags this recipe reads nothing from: accepted, they were silently ignored
NOT_USED = ("label_column", "max_target_length")


def main(argv: list[str] | None = None) -> dict:
    """Fine-tune as the flags describe; returns metrics.json's content."""
    return finetune_causal(parse_args(TYPES, argv, hide=NOT_USED))


if __name__ == "__main__":
    run_cli(main)
