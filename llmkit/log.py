"""One logger for llmkit: plain lines from the main process, at the verbosity the user asked for.

Every module logs through `get_logger(__name__)`. `configure_logging` follows transformers'
`--log_level` / `--log_level_replica` flags (every recipe has them), so `--log_level error` quiets a
run and other ranks print only warnings: a 2-rank run says each thing once. It imports only the
standard library, so the classic recipes can use it without loading transformers.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class _ConsoleHandler(logging.StreamHandler):
    """Info on stdout, warnings and errors on stderr, looked up at each message (pytest and notebooks swap them)."""

    _target = None

    @property
    def stream(self):
        return self._target or sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        self._target = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        # The reader went away (`llmkit pretrain | head -3`): stop as print() does, which the CLI ends quietly;
        # logging's own handling printed "--- Logging error ---" and a traceback for every later line.
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            raise sys.exc_info()[1]
        super().handleError(record)


class _KnownNoise(logging.Filter):
    """transformers' messages a user of llmkit cannot act on: dropped, or said in one plain line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "strongly recommend passing in an `attention_mask`" in message:
            return False  # llmkit packs blocks: there is no padding to mask
        if "Token indices sequence length is longer than" in message:
            return False  # llmkit measures whole documents before it cuts them to the model's length
        if message.startswith("There were missing keys in the checkpoint model loaded: ['lm_head.weight']"):
            return False  # the head is tied to the embedding, which was loaded
        if "requires torchvision (not installed); falling back to" in message:
            return False  # the PIL image processor it falls back to gives the same inputs
        if message.startswith("mtime may not be reliable on this filesystem"):
            return False  # checkpoints saved within a second of each other: ordered by step instead, as llmkit does
        if "LOAD REPORT" in message:
            record.msg, record.args = _load_report_line(message), ()
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _load_report_line(report: str) -> str:
    """transformers' weight-loading table as one line: new task-head weights and unused ones are expected."""
    report = re.sub(r"\x1b\[[0-9;]*m", "", report)
    rows = re.findall(r"^(\S+)\s*\|\s*([A-Z_]+)\s*\|", report, flags=re.M)
    by_status: dict[str, list[str]] = {}
    for key, status in rows:
        by_status.setdefault(status, []).append(key)
    if set(by_status) - {"MISSING", "UNEXPECTED"}:
        return report  # mismatched shapes and the like: the user should see the table
    head = report.split("\n", 1)[0].replace(" LOAD REPORT from:", " from")
    parts = []
    if "MISSING" in by_status:
        parts.append(f"new task head ({', '.join(by_status['MISSING'][:4])}) starts untrained")
    if "UNEXPECTED" in by_status:
        parts.append(f"{len(by_status['UNEXPECTED'])} checkpoint weights this task does not use are left out")
    return f"{head}: {'; '.join(parts)} (expected when fine-tuning for a new task)"


def quiet_known_noise() -> None:
    """Silence or shorten the library messages that need no action (see _KnownNoise), once per process."""
    for name in (
        "transformers.modeling_utils",
        "transformers.trainer",
        "transformers.trainer_utils",
        "transformers.tokenization_utils_base",
        "transformers.utils.import_utils",
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _KnownNoise) for f in logger.filters):
            logger.addFilter(_KnownNoise())
    # transformers 5 renamed these; llmkit and peft still reach the old names, which work until v6
    warnings.filterwarnings(
        "ignore", message=r".*gradient_checkpointing\w*` is deprecated", category=FutureWarning
    )


def get_logger(name: str) -> logging.Logger:
    """The logger of an llmkit module (a child of the `llmkit` logger)."""
    return logging.getLogger(name if name.startswith("llmkit") else f"llmkit.{name}")


def is_main_process() -> bool:
    """Whether this is rank 0 of a launch (or the only process)."""
    return os.environ.get("RANK", "0") == "0"


def configure_logging(log_level: str = "passive", log_level_replica: str = "warning") -> None:
    """Print llmkit's messages as plain lines (info on stdout, warnings on stderr); `passive` means info on rank 0."""
    quiet_known_noise()
    logger = logging.getLogger("llmkit")
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        handler = _ConsoleHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False  # a user's root handler would print every line twice
    wanted = log_level if is_main_process() else log_level_replica
    default = logging.INFO if is_main_process() else logging.WARNING
    logger.setLevel(LEVELS.get(wanted, default))


class _Without(logging.Filter):
    def __init__(self, fragments: tuple[str, ...]):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


@contextmanager
def without_messages(logger_name: str, *fragments: str) -> Iterator[None]:
    """Leave out another library's log lines holding any of `fragments` while the block runs (llmkit says it better)."""
    dropped, source = _Without(fragments), logging.getLogger(logger_name)
    source.addFilter(dropped)
    try:
        yield
    finally:
        source.removeFilter(dropped)
