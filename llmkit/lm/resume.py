"""Resuming a pretraining run: refuse flags that would change the model or tokenizer being resumed.

The checkpoint's config.json holds the model's shape; `llmkit_tokenizer.json`, written next to the
saved tokenizer when a run starts, holds what the tokenizer was asked to be. Both are compared with
this run's flags before anything is built, so a mismatch is a message, not a traceback or a silently
ignored flag.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import PreTrainedTokenizerBase, TrainingArguments

from llmkit import record
from llmkit.checkpoints import find_resume_checkpoint, refuse_to_replace_finished_run
from llmkit.data import DataArguments
from llmkit.data.tokenizer import load_tokenizer, tokenizer_fingerprint
from llmkit.errors import UserError
from llmkit.lm.model import ModelArguments
from llmkit.log import get_logger

logger = get_logger(__name__)

REQUEST_FILE = "llmkit_tokenizer.json"
SHAPE_FLAGS = ("n_layer", "n_head", "n_embd", "n_positions")


def write_tokenizer_request(out: Path, args: ModelArguments, *, tokenized: dict | None = None) -> None:
    """Record which tokenizer a new run asked for, for the checks of later resumes.

    `tokenized`: {"tokenized_dataset": path, "vocab_size": n} for a run that trains from `llmkit tokenize`'s blocks.
    """
    if tokenized:
        request = {"tokenizer_name": None, **tokenized}
    else:
        request = {
            "tokenizer_name": args.tokenizer_name,
            "vocab_size": None if args.tokenizer_name else args.bpe_vocab_size,
        }
    # atomic: a cut file reads as "no request recorded", and every later resume would skip its checks
    record.write_atomic(Path(out) / REQUEST_FILE, json.dumps(request) + "\n")


def read_tokenizer_request(out: Path) -> str | None:
    """How the saved tokenizer was made, in words (None for runs that did not record it)."""
    request = _request(out)
    if request is None:
        return None
    if request.get("tokenized_dataset"):
        return f"the tokenizer of {request['tokenized_dataset']}, saved in {out}"
    if request.get("tokenizer_name"):
        return f"{request['tokenizer_name']}, saved in {out}"
    return f"byte-level BPE of {request.get('vocab_size')} trained on the corpus, saved in {out}"


def check_resume_matches(
    checkpoint: str, out: Path, args: ModelArguments, *, tokenized: bool = False
) -> None:
    """Refuse to resume `checkpoint` with a different model shape, tokenizer or vocabulary size.

    With `tokenized` (training from a tokenized dataset) the tokenizer flags are left to the checks that
    compare the dataset's tokenizer with the run's by content (check_tokenized, check_resume_tokenizer).
    """
    config_file = Path(checkpoint) / "config.json"
    if config_file.is_file():
        saved = json.loads(config_file.read_text())
        wanted = args.config_fields()
        changed = [
            f"--{k} {wanted[k]} (checkpoint: {saved[k]})"
            for k in SHAPE_FLAGS
            if k in saved and saved[k] != wanted[k]
        ]
        if changed:
            keep = " ".join(f"--{k} {saved[k]}" for k in SHAPE_FLAGS if k in saved)
            raise UserError(
                f"cannot resume {checkpoint} with another model shape: {', '.join(changed)}; "
                f"resume with the checkpoint's shape ({keep}) or start a new run with a new --output_dir."
            )
    # a checkpoint resumed into another output_dir: its own run's request (its tokenizer is what gets loaded)
    request = _request(out) or _request(Path(checkpoint).parent)
    if request is None or tokenized:
        return
    fix = "drop the flag to resume with the run's own tokenizer, or start a new run with a new --output_dir"
    if args.tokenizer_name and args.tokenizer_name != request.get("tokenizer_name"):
        was = request.get("tokenizer_name") or (
            f"the tokenizer of {request['tokenized_dataset']}"
            if request.get("tokenized_dataset")
            else f"a BPE of {request.get('vocab_size')} trained on the corpus"
        )
        raise UserError(
            f"cannot resume {checkpoint} with --tokenizer_name {args.tokenizer_name}: it was trained with {was}; {fix}."
        )
    if (
        args.vocab_size is not None
        and not args.tokenizer_name
        and args.vocab_size != request.get("vocab_size")
    ):
        was = request.get("vocab_size") or f"tokenizer {request.get('tokenizer_name')}"
        raise UserError(
            f"cannot resume {checkpoint} with --vocab_size {args.vocab_size}: it was trained with {was}; {fix}."
        )


def check_resume_tokenizer(
    checkpoint: str, out: Path, tokenizer: PreTrainedTokenizerBase, dataset: str
) -> None:
    """Refuse to resume `checkpoint` from tokenized `dataset` when its tokenizer is not the one saved with the run."""
    if not (Path(out) / "tokenizer.json").is_file():
        return  # nothing saved to compare with; the checkpoint's vocabulary size is still checked
    if tokenizer_fingerprint(load_tokenizer(str(out))) == tokenizer_fingerprint(tokenizer):
        return  # the same tokenizer: other blocks made with it may continue the run
    request = _request(out) or {}
    if request.get("tokenized_dataset"):
        was, fix = (
            f"--tokenized_dataset {request['tokenized_dataset']}",
            f"resume with --tokenized_dataset {request['tokenized_dataset']}",
        )
    else:
        was = read_tokenizer_request(out) or f"the tokenizer saved in {out}"
        fix = "resume with the flags the run started with"
    raise UserError(
        f"cannot resume {checkpoint} with --tokenized_dataset {dataset}: its tokenizer differs from the one the run "
        f"was trained with ({was}); {fix}, or start a new run with a new --output_dir."
    )


def _request(out: Path) -> dict | None:
    path = Path(out) / REQUEST_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def checkpoint_to_resume(
    data_args: DataArguments, model_args: ModelArguments, args: TrainingArguments, out: Path
) -> str | None:
    """The checkpoint this run continues, checked against its flags; None for a new run (not over a finished one)."""
    # the first process tidies, the rest read
    with args.main_process_first(desc="finding the checkpoint to resume"):
        resume = find_resume_checkpoint(out, args.resume_from_checkpoint)
    if not resume and not args.hp_search_trials:  # a search writes hp_search/ and leaves a finished run alone
        refuse_to_replace_finished_run(out)
    if resume:
        logger.info(f"resuming from {resume}")
        check_resume_matches(resume, out, model_args, tokenized=bool(data_args.tokenized_dataset))
    return resume


def saved_tokenizer_dir(out: Path, resume: str | None, is_main: bool) -> str | Path | None:
    """Where this run's tokenizer was saved before: a resumed checkpoint's own copy (a kill while a resume re-saved
    output_dir's leaves that one cut), else output_dir's, which the main rank saves for the others."""
    if resume:
        return resume if (Path(resume) / "tokenizer.json").is_file() else out
    return None if is_main else out
