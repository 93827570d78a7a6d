"""Ctrl-C that keeps work: the first SIGINT/SIGTERM asks the training loop to save and stop, a second one stops at once.

Training loops poll `GracefulInterrupt.requested` between steps, save a checkpoint at the current step
and raise `TrainingInterrupted`; `llmkit.errors.run_cli` turns that into exit status 130. This module
imports only the standard library, so the classic recipes can use it without loading transformers.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after an interrupted run saved its checkpoint."""


class GracefulInterrupt:
    """Context manager: the first SIGINT/SIGTERM sets `.requested`; the second raises KeyboardInterrupt."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    # `accelerate launch` forwards the terminal's Ctrl-C to ranks that already got it from the terminal:
    # a second signal this soon after the first is the same keypress, not a request to stop at once.
    SAME_PRESS_SECONDS = 1.0

    def __init__(self) -> None:
        self.requested = False
        self._first_at = 0.0
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            if time.monotonic() - self._first_at < self.SAME_PRESS_SECONDS:
                return
            raise KeyboardInterrupt
        self.requested = True
        self._first_at = time.monotonic()
        name = signal.Signals(signum).name
        print(
            f"\n{name}: saving a checkpoint at the current step, then stopping (press Ctrl-C again to stop at once).",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> GracefulInterrupt:
        # Signal handlers can only be installed from the main thread (a Gradio app trains in a worker thread).
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
