"""Fine-tune T5 (or any seq2seq model) on text-to-text pairs: summarization, translation, or your own mapping."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from datasets import DatasetDict
from tokenizers import processors
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    Seq2SeqTrainer,
    T5Config,
    T5ForConditionalGeneration,
    set_seed,
)

from llmkit.data.tokenizer import train_byte_level_bpe
from llmkit.errors import UserError
from llmkit.finetune.builtin import summarization_sample
from llmkit.finetune.common import FinetuneModelArguments, FinetuneParsed, FinetuneSeq2SeqArguments, start_run
from llmkit.finetune.data import drop_empty, load_table
from llmkit.finetune.lora import apply_lora
from llmkit.finetune.metrics import text_scores
from llmkit.finetune.outputs import finish_run
from llmkit.finetune.trainer import build_trainer, report_truncation, resume_checkpoint, train_and_evaluate
from llmkit.launch import one_run_per_output_dir
from llmkit.loading import load_pretrained
from llmkit.log import get_logger

logger = get_logger(__name__)


@dataclass
class Seq2SeqArguments:
    """The text-to-text task."""

    source_prefix: str | None = field(
        default=None,
        metadata={"help": "Prepended to every input, e.g. 'summarize: ' or 'translate English to German: '."},
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "A tokenizer, when the model folder has none."}
    )
    from_scratch: bool = field(
        default=False,
        metadata={
            "help": "Build a small T5 and train its tokenizer on the data (the default with the built-in task)."
        },
    )
    scratch_vocab_size: int = field(
        default=4000, metadata={"help": "Vocabulary of the tokenizer trained for a T5 built from scratch."}
    )
    num_beams: int = field(default=1, metadata={"help": "Beams when generating during evaluation."})

    def __post_init__(self) -> None:
        if self.num_beams < 1:  # generate() took a traceback at the first evaluation
            raise UserError(f"--num_beams must be at least 1, got {self.num_beams}.")


def small_t5(tokenizer: PreTrainedTokenizerFast) -> T5ForConditionalGeneration:
    """A small T5 (2+2 layers, width 128) sized to the tokenizer: the offline default."""
    # T5 starts decoding from <pad>
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=128,
        d_ff=512,
        d_kv=32,
        num_heads=4,
        num_layers=2,
        num_decoder_layers=2,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return T5ForConditionalGeneration(config)


def train_t5_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE with T5's special tokens, appending </s> to every sequence."""
    bpe = train_byte_level_bpe(texts, vocab_size, ["<pad>", "</s>", "<unk>"])
    bpe.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    tokenizer.model_max_length = 512
    return tokenizer


@one_run_per_output_dir
def finetune_seq2seq(parsed: FinetuneParsed) -> dict:
    """Fine-tune a seq2seq model; report ROUGE, BLEU and exact match; save it with a model card."""
    task, data_args, model_args, lora_args, args = parsed
    start_run(args)
    logger.info(args.choose_learning_rate(lora_args.use_lora))
    source_col, target_col = data_args.text_column or "text", data_args.target_column or "summary"
    builtin = not (data_args.dataset_name or data_args.train_file)
    raw = load_table(data_args, summarization_sample, [source_col, target_col], seed=args.seed)
    raw, empty = drop_empty(raw, source_col, data_args)
    raw, empty_targets = drop_empty(raw, target_col, data_args)
    if empty or empty_targets:
        logger.info(f"dropped {empty + empty_targets} example(s) with an empty input or target")
    prefix = (
        task.source_prefix
        if task.source_prefix is not None
        else ("summarize: " if builtin or "t5" in (model_args.model_name_or_path or "t5") else "")
    )

    set_seed(args.seed)
    # loaded before resume_checkpoint makes output_dir: a model that cannot be fetched left an empty folder behind
    pretrained = _pretrained(task, model_args, builtin=builtin)
    resume = resume_checkpoint(args, use_lora=lora_args.use_lora)
    model, tokenizer, base = pretrained or _from_scratch(
        task, args, raw, columns=(source_col, target_col), resume=resume
    )
    if lora_args.use_lora:
        model = apply_lora(model, lora_args, "SEQ_2_SEQ_LM")
    data, truncated = _tokenize_pairs(
        raw,
        tokenizer,
        args,
        columns=(source_col, target_col),
        prefix=prefix,
        max_length=data_args.max_length or 256,
        max_target_length=data_args.max_target_length,
    )
    args.generation_num_beams = task.num_beams

    def compute_metrics(pred):
        preds = np.where(pred.predictions < 0, tokenizer.pad_token_id, pred.predictions)
        labels = np.where(pred.label_ids < 0, tokenizer.pad_token_id, pred.label_ids)
        return text_scores(
            tokenizer.batch_decode(preds, skip_special_tokens=True),
            tokenizer.batch_decode(labels, skip_special_tokens=True),
        )

    trainer = build_trainer(
        args,
        data,
        tokenizer,
        DataCollatorForSeq2Seq(tokenizer, model=model),
        model=model,
        compute_metrics=compute_metrics,
        trainer_cls=Seq2SeqTrainer,
    )
    metrics = train_and_evaluate(trainer, resume, data.get("test"))
    return finish_run(
        trainer,
        lora_args,
        recipe="finetune-t5",
        task="Text-to-text generation",
        pipeline_tag="text2text-generation",
        base=base,
        data=data_args.source,
        eval_metrics=metrics,
        example=prefix + raw["validation"][0][source_col][:200],
        headline=["rougeL", "bleu", "exact_match"],
        extra={"source_prefix": prefix, "truncated_examples": truncated},
    )


def _pretrained(
    task: Seq2SeqArguments, model_args: FinetuneModelArguments, *, builtin: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str] | None:
    """The pretrained model, its tokenizer and its name for the model card; None for a small T5 from scratch."""
    name = model_args.model_name_or_path or (None if builtin or task.from_scratch else "t5-small")
    if name is None:
        return None
    tokenizer = _tokenizer(task.tokenizer_name or name)
    return load_pretrained(AutoModelForSeq2SeqLM, name, hint=SEQ2SEQ_HINT), tokenizer, name


def _from_scratch(
    task: Seq2SeqArguments,
    args: FinetuneSeq2SeqArguments,
    raw: DatasetDict,
    *,
    columns: tuple[str, str],
    resume: str | None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """The offline default: a small T5 and a tokenizer trained on the training text (or the resumed run's)."""
    saved = next(
        (Path(d) for d in (resume, args.output_dir) if d and (Path(d) / "tokenizer.json").is_file()), None
    )
    if saved:  # resuming: the vocabulary the checkpoint was trained with
        tokenizer = load_pretrained(AutoTokenizer, saved)
    else:
        source_col, target_col = columns
        tokenizer = train_t5_tokenizer(
            list(raw["train"][source_col]) + list(raw["train"][target_col]), task.scratch_vocab_size
        )
    return small_t5(tokenizer), tokenizer, "t5 (small, from scratch)"


def _tokenize_pairs(
    raw: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    args: FinetuneSeq2SeqArguments,
    *,
    columns: tuple[str, str],
    prefix: str,
    max_length: int,
    max_target_length: int,
) -> tuple[DatasetDict, int]:
    """Inputs (prefixed) and target ids for every split, and how many inputs were cut at max_length."""
    source_col, target_col = columns

    def encode(batch):
        inputs = [prefix + t for t in batch[source_col]]
        enc = tokenizer(inputs, max_length=max_length, truncation=True)
        enc["labels"] = tokenizer(
            text_target=batch[target_col], max_length=max_target_length, truncation=True
        )["input_ids"]
        enc["truncated"] = [len(ids) > max_length for ids in tokenizer(inputs)["input_ids"]]
        return enc

    with args.main_process_first(desc="tokenizing"):
        data = raw.map(encode, batched=True, remove_columns=raw["train"].column_names, desc="Tokenizing")
    return report_truncation(data, max_length)


# With data and no --model_name_or_path the model is t5-small: "omit --model_name_or_path" was no fix offline.
SEQ2SEQ_HINT = (
    "Offline, train a small T5 from scratch instead (--from_scratch, without --model_name_or_path), or pass a "
    "local seq2seq folder."
)


def _tokenizer(name: str):
    """Load a tokenizer; a model folder without tokenizer files is an error, not an empty tokenizer."""
    fix = "pass --tokenizer_name with the tokenizer the model was trained with."
    tokenizer = load_pretrained(AutoTokenizer, name, hint=fix if Path(name).is_dir() else SEQ2SEQ_HINT)
    if not tokenizer("a test", add_special_tokens=False)["input_ids"]:
        raise UserError(f"the tokenizer loaded from {name!r} encodes nothing; {fix}")
    return tokenizer


@torch.inference_mode()
def text2text(
    model_dir: str | Path,
    text: str,
    *,
    max_new_tokens: int = 64,
    num_beams: int = 1,
    model=None,
    tokenizer=None,
) -> str:
    """Generate the output text for one input with a saved seq2seq model (transformers 5 has no text2text pipeline)."""
    tokenizer = tokenizer or _tokenizer(str(model_dir))
    model = model or load_pretrained(AutoModelForSeq2SeqLM, model_dir).eval()
    ids = model.generate(
        **tokenizer(text, return_tensors="pt", truncation=True),
        max_new_tokens=max_new_tokens,
        num_beams=num_beams,
    )
    return tokenizer.decode(ids[0], skip_special_tokens=True)
