"""One error type for a user's mistake, and the wrapper that turns it into a clean exit."""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable
from types import ModuleType

# How long rank 1+ waits for rank 0 to report the same refusal (and the launcher to stop the others)
RANK_REPORT_DELAY_S = 5


class UserError(Exception):
    """A problem with the user's input; the message names the problem and the fix."""


# Optional dependencies: import name -> (pip package, the llmkit extras that install it, first = the one to name).
# tests/test_errors.py checks this table against pyproject.toml's extras.
OPTIONAL: dict[str, tuple[str, tuple[str, ...]]] = {
    "faiss": ("faiss-cpu", ("rag",)),
    "sentence_transformers": ("sentence-transformers", ("rag",)),
    "pypdf": ("pypdf", ("rag",)),
    "openai": ("openai", ("rag",)),
    "gradio": ("gradio", ("ui",)),
    "gradio_client": ("gradio", ("ui",)),
    "peft": ("peft", ("finetune", "vision")),
    "sklearn": ("scikit-learn", ("finetune", "classic", "vision")),
    "seqeval": ("seqeval", ("finetune",)),
    "rouge_score": ("rouge-score", ("finetune",)),
    "sacrebleu": ("sacrebleu", ("finetune",)),
    "optuna": ("optuna", ("hpsearch",)),
    "torchmetrics": ("torchmetrics", ("vision",)),
    "pycocotools": ("pycocotools", ("vision",)),
    "PIL": ("pillow", ("vision",)),
    "tensorboard": ("tensorboard", ("tensorboard",)),
    "liger_kernel": ("liger-kernel", ("gpu",)),
}


def missing_extra_message(module: str, extra: str | None = None) -> str | None:
    """What to install for a missing optional module ("... pip install 'llmkit[rag]'"), or None if not optional."""
    top = module.split(".")[0]
    if top not in OPTIONAL and extra is None:
        return None
    package, extras = OPTIONAL.get(top, (top, (extra,)))
    extra = extra or extras[0]
    also = [e for e in extras if e != extra]
    return (
        f"this needs the optional package {package!r} (import {top!r}), which is not installed: "
        f"pip install 'llmkit[{extra}]'"
        + (f" (also in the {' and '.join(also)} extra{'s' * (len(also) > 1)})." if also else ".")
    )


def _let_rank_zero_report_first() -> None:
    """On rank 1+ of a launch, wait a moment before reporting a refusal, so it is printed once, not once per rank.

    Every rank parses the same flags and reads the same files, so a refusal is usually raised by all of them at
    once; rank 0 reports it and exits, and the launcher then stops the waiting ranks. A refusal only this rank
    meets (a file missing on one machine) is still reported, a few seconds later.
    """
    if int(os.environ.get("RANK", "0") or 0) > 0:
        time.sleep(RANK_REPORT_DELAY_S)


def run_cli(main: Callable[[], object]) -> None:
    """Run `main`; on a UserError print `error: ...` (no traceback) and exit with status 2."""
    from llmkit import record
    from llmkit.log import configure_logging
    from llmkit.secrets import install_log_redaction

    record.start_command_clock()  # wall_time_seconds counts the whole command, imports included
    install_log_redaction()
    configure_logging()  # recipes refine it from --log_level once their arguments are parsed
    try:
        main()
    except UserError as err:
        from llmkit.folders import remove_empty_created

        remove_empty_created()
        _let_rank_zero_report_first()
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except ModuleNotFoundError as err:
        # An optional dependency (faiss, gradio, peft, ...) that is not installed: name the extra, not a traceback.
        message = missing_extra_message(err.name or "")
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as err:
        # A TrainingInterrupted carries the checkpoint it saved; a bare Ctrl-C keeps what was saved before.
        detail = str(err) or "checkpoints already saved are kept; run the same command to resume."
        print(f"interrupted: {detail}", file=sys.stderr)
        sys.exit(130)
    finally:
        record.stop_command_clock()


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or say which llmkit extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(missing_extra_message(module, extra)) from None
