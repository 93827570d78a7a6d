"""One logger for llmkit: plain lines from the main process, at the verbosity the user asked for.

Every module logs through `get_logger(__name__)`. `configure_logging` follows transformers'
`--log_level` / `--log_level_replica` flags (every recipe has them), so `--log_level error` quiets a
run and other ranks print only warnings: a 2-rank run says each thing once. It imports only the
standard library, so the classic recipes can use it without loading transformers.
"""

from __future__ import annotations

import logging
import os
import sys

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


def get_logger(name: str) -> logging.Logger:
    """The logger of an llmkit module (a child of the `llmkit` logger)."""
    return logging.getLogger(name if name.startswith("llmkit") else f"llmkit.{name}")


def is_main_process() -> bool:
    """Whether this is rank 0 of a launch (or the only process)."""
    return os.environ.get("RANK", "0") == "0"


def configure_logging(log_level: str = "passive", log_level_replica: str = "warning") -> None:
    """Print llmkit's messages as plain lines (info on stdout, warnings on stderr); `passive` means info on rank 0."""
    logger = logging.getLogger("llmkit")
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        handler = _ConsoleHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False  # a user's root handler would print every line twice
    wanted = log_level if is_main_process() else log_level_replica
    default = logging.INFO if is_main_process() else logging.WARNING
    logger.setLevel(LEVELS.get(wanted, default))
