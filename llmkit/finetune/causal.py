"""Continue training a causal LM (e.g. the output of pretrain_gpt2.py) on text, or on prompt/response pairs
with the loss on the responses only."""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datasets import DatasetDict
from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, set_seed

from llmkit.data.packing import collate_blocks, pack
from llmkit.errors import UserError
from llmkit.finetune.builtin import summarization_sample
from llmkit.finetune.common import (
    FinetuneParsed,
    FinetuneTrainingArguments,
    start_run,
)
from llmkit.finetune.data import ROW, SOURCE, FinetuneDataArguments, drop_empty, load_table
from llmkit.finetune.lora import apply_lora
from llmkit.finetune.outputs import finish_run
from llmkit.finetune.trainer import build_trainer, report_truncation, resume_checkpoint, train_and_evaluate
from llmkit.launch import one_run_per_output_dir
from llmkit.lm.model import pad_vocabulary
from llmkit.lm.report import perplexity
from llmkit.loading import load_pretrained
from llmkit.log import get_logger

logger = get_logger(__name__)

DEFAULT_MODEL = "runs/gpt2-tiny"  # where `llmkit pretrain` / `make pretrain` leave their model


@dataclass
class CausalArguments:
    """How examples become training text."""

    prompt_template: str = field(
        default="{prompt}\n",
        metadata={
            "help": "How a prompt is written before its response: {prompt} is --text_column, {name} any column."
        },
    )


def _builtin_pairs() -> list[dict]:
    return [
        {"prompt": f"Docstring: {r['text'][:400]}\nSummary:", "response": " " + r["summary"]}
        for r in summarization_sample()
    ]


@one_run_per_output_dir
def finetune_causal(parsed: FinetuneParsed) -> dict:
    """Fine-tune a causal LM on text (packed) or prompt/response pairs (loss on responses only)."""
    task, data_args, model_args, lora_args, args = parsed
    start_run(args)
    logger.info(args.choose_learning_rate(lora_args.use_lora))
    builtin = not (data_args.dataset_name or data_args.train_file)
    prompt_col = data_args.text_column or ("prompt" if builtin else "text")
    response_col = data_args.target_column or ("response" if builtin else None)
    name = model_args.model_name_or_path or DEFAULT_MODEL
    if name == DEFAULT_MODEL and not Path(name).is_dir():
        raise UserError(
            f"no model at {DEFAULT_MODEL}: pretrain one there first (`llmkit pretrain`, or `make pretrain` in a clone), "
            "or pass --model_name_or_path (e.g. gpt2 or any pretraining output_dir)."
        )
    tokenizer = load_pretrained(AutoTokenizer, name)
    set_seed(args.seed)
    model = load_pretrained(AutoModelForCausalLM, name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not lora_args.use_lora:  # an adapter must keep its base model's vocabulary
        pad_vocabulary(model, tokenizer)
    context = getattr(model.config, "n_positions", None) or getattr(
        model.config, "max_position_embeddings", 1024
    )
    max_length = min(data_args.max_length or context, context)

    raw, data, collator = _causal_data(
        task,
        data_args,
        args,
        tokenizer,
        columns=(prompt_col, response_col),
        max_length=max_length,
        context=context,
    )
    if lora_args.use_lora:
        model = apply_lora(model, lora_args, "CAUSAL_LM")
    resume = resume_checkpoint(args, use_lora=lora_args.use_lora)
    trainer = build_trainer(args, data, tokenizer, collator, model=model)
    metrics = train_and_evaluate(trainer, resume)
    metrics["eval_perplexity"] = perplexity(metrics["eval_loss"])
    example = (
        _prompt(task.prompt_template, raw["validation"][0], prompt_col)[:200]
        if response_col
        else raw["validation"][0][prompt_col][:60]
    )
    return finish_run(
        trainer,
        lora_args,
        recipe="finetune-gpt2",
        task="Causal language modelling" + (" on prompt/response pairs" if response_col else ""),
        pipeline_tag="text-generation",
        base=name,
        data=data_args.source,
        eval_metrics=metrics,
        example=example,
        headline=["loss", "perplexity"],
    )


def _causal_data(
    task: CausalArguments,
    data_args: FinetuneDataArguments,
    args: FinetuneTrainingArguments,
    tokenizer,
    *,
    columns: tuple[str, str | None],
    max_length: int,
    context: int | None = None,
) -> tuple[DatasetDict, dict, Callable]:
    """The table as read, its tokenized splits and their collator: prompt/response pairs, or text packed
    into blocks of max_length when there is no response column."""
    prompt_col, response_col = columns
    # the prompt is written by the template, from --text_column ({prompt}) or any column it names
    if response_col:
        asked = {c: "--prompt_template" for c in template_columns(task.prompt_template, prompt_col)}
        asked[response_col] = "--target_column"
    else:
        asked = {prompt_col: "--text_column"}
    names = list(asked)
    raw = load_table(data_args, _builtin_pairs, names, seed=args.seed, asked_by=asked)
    for col in names:
        raw, dropped = drop_empty(raw, col, data_args)
        if dropped:
            logger.info(f"dropped {dropped} example(s) with an empty {col!r}")
    raw = raw.remove_columns([SOURCE, ROW])
    with args.main_process_first(desc="tokenizing"):
        if response_col:
            data = raw.map(
                lambda b: _pairs(b, tokenizer, task.prompt_template, prompt_col, response_col, max_length),
                batched=True,
                remove_columns=names,
                desc="Tokenizing pairs",
            )
            data, _ = report_truncation(data, max_length, "prompts", model_limit=context)
            # pads inputs and masks padded labels
            collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)
        else:
            data = {
                s: pack(
                    raw[s].rename_column(prompt_col, "text") if prompt_col != "text" else raw[s],
                    tokenizer,
                    max_length,
                )
                for s in raw
            }
            collator = collate_blocks
    if len(data["train"]) == 0:
        raise UserError(
            f"no training example left (the text is shorter than one block of {max_length} tokens?)."
        )
    for split in ("validation", "test"):
        if split in data and len(data[split]) == 0:  # else the Trainer finds no eval_loss: a KeyError
            raise UserError(
                f"the {split} text is shorter than one block of {max_length} tokens, so there is nothing to score; "
                f"give more {split} text (a larger --{split}_file"
                + (", a higher --validation_split_percentage" if split == "validation" else "")
                + ") or a smaller --max_length."
            )
    return raw, data, collator


def template_columns(template: str, prompt_col: str) -> list[str]:
    """The data columns a prompt template reads: {prompt} is --text_column, any other {name} the column `name`."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as err:
        raise UserError(
            f"--prompt_template {template!r} is not a valid template ({err}); write columns as {{name}} "
            "and a literal brace as {{ or }}."
        ) from None
    if not fields or any(f == "" or f.isdigit() for f in fields):
        raise UserError(
            f"--prompt_template {template!r} must name its columns, e.g. 'Q: {{question}}\\nA:' "
            "({prompt} stands for --text_column)."
        )
    names = [prompt_col if f == "prompt" else re.split(r"[.\[!:]", f)[0] for f in fields]
    return list(dict.fromkeys(names))


def _prompt(template: str, row: dict, prompt_col: str) -> str:
    return template.format(**{**row, "prompt": row.get(prompt_col)})


def _pairs(
    batch: dict, tokenizer, template: str, prompt_col: str, response_col: str, max_length: int
) -> dict:
    """input_ids = prompt + response + eos; labels mask the prompt with -100 so only the response is learned."""
    rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
    prompts = tokenizer([_prompt(template, row, prompt_col) for row in rows], add_special_tokens=False)[
        "input_ids"
    ]
    responses = tokenizer(batch[response_col], add_special_tokens=False)["input_ids"]
    ids, labels, truncated = [], [], []
    for p, r in zip(prompts, responses):
        r = r + [tokenizer.eos_token_id]
        truncated.append(len(p) + len(r) > max_length)
        p = p[-max(1, max_length - len(r)) :]  # keep the end of an over-long prompt, next to its response
        seq, lab = (p + r)[:max_length], ([-100] * len(p) + r)[:max_length]
        ids.append(seq)
        labels.append(lab)
    return {
        "input_ids": ids,
        "attention_mask": [[1] * len(x) for x in ids],
        "labels": labels,
        "truncated": truncated,
    }
