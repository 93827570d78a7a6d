"""`llmkit <command> ...`: thin dispatch to the same functions the recipes call."""

from __future__ import annotations

import argparse
import sys

from llmkit.errors import run_cli

USAGE = """usage: llmkit <command> [options]

commands:
  pretrain        pretrain a GPT-2-style model from scratch (the flags of recipes/pretrain_gpt2.py)
  finetune-bert   fine-tune an encoder for classification or tagging (recipes/finetune_bert.py)
  finetune-t5     fine-tune T5 on text-to-text pairs (recipes/finetune_t5.py)
  finetune-gpt2   continue training a causal LM (recipes/finetune_gpt2.py)
  generate        sample text from a causal LM folder, streaming it to the terminal
  rag             index documents and ask questions with cited sources (index, ask, eval, chat)

`llmkit <command> --help` lists a command's options."""


def _recipe(name: str):
    """A command that parses recipe flags into the recipe's dataclasses and calls its function."""

    def run(argv: list[str]) -> None:
        from llmkit.arguments import parse_args
        from llmkit.data import DataArguments
        from llmkit.finetune import (
            ClassificationArguments,
            FinetuneDataArguments,
            FinetuneModelArguments,
            FinetuneSeq2SeqArguments,
            FinetuneTrainingArguments,
            LoraArguments,
            finetune_classifier,
        )
        from llmkit.finetune.causal import CausalArguments, finetune_causal
        from llmkit.finetune.seq2seq import Seq2SeqArguments, finetune_seq2seq
        from llmkit.lm import ModelArguments, PretrainingArguments, pretrain

        shared = (FinetuneDataArguments, FinetuneModelArguments, LoraArguments)
        fn, types = {
            "pretrain": (pretrain, (DataArguments, ModelArguments, PretrainingArguments)),
            "finetune-bert": (finetune_classifier, (ClassificationArguments, *shared, FinetuneTrainingArguments)),
            "finetune-t5": (finetune_seq2seq, (Seq2SeqArguments, *shared, FinetuneSeq2SeqArguments)),
            "finetune-gpt2": (finetune_causal, (CausalArguments, *shared, FinetuneTrainingArguments)),
        }[name]
        fn(*parse_args(types, argv))

    return run


def _generate(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="llmkit generate", description="Sample text from a causal language model.")
    parser.add_argument("--model", required=True, help="a training run's output_dir, or a Hub name")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max_new_tokens", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 means greedy")
    parser.add_argument("--top_k", type=int, default=50)
    parser.add_argument("--top_p", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    from llmkit.lm import generate_text, load_causal_lm

    model, tokenizer = load_causal_lm(args.model)
    generate_text(model, tokenizer, args.prompt, args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed, stream=True)


def _rag(argv: list[str]) -> None:
    from llmkit.rag.commands import main

    main(argv)


COMMANDS = {
    "pretrain": _recipe("pretrain"),
    "finetune-bert": _recipe("finetune-bert"),
    "finetune-t5": _recipe("finetune-t5"),
    "finetune-gpt2": _recipe("finetune-gpt2"),
    "generate": _generate,
    "rag": _rag,
}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `llmkit` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nerror: unknown command {argv[0]!r}", file=sys.stderr)
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    run_cli(lambda: COMMANDS[argv[0]](argv[1:]))
