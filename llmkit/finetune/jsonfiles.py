"""JSON training files: the `datasets` JSON loader's own log line on a malformed file is left to llmkit's
one-line error."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class _NoLoaderFailure(logging.Filter):
    """Drops the loader's "Failed to load JSON from file ..." line: the error that follows it is llmkit's."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("Failed to load JSON", "Failed to convert pandas"))


@contextmanager
def quiet_json_loader() -> Iterator[None]:
    """While loading data files, leave the `datasets` JSON loader's failure log out (llmkit reports the line)."""
    quiet, source = _NoLoaderFailure(), logging.getLogger("datasets.packaged_modules.json.json")
    source.addFilter(quiet)
    try:
        yield
    finally:
        source.removeFilter(quiet)
