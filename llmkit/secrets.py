"""What a secret looks like, and how llmkit keeps secrets out of every file and log line it writes."""

from __future__ import annotations

import logging
import os
import re
from typing import Any

# Patterns of credentials that must never reach a file, a log or a public Space.
SECRETS: dict[str, re.Pattern[str]] = {
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "OpenAI-style API key": re.compile(r"\bsk-[A-Za-z0-9_\-]{20,}\b"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN (RSA |EC |OPENSSH )?PRIVATE KEY-----"),
}
TOKEN_RE = re.compile("|".join(f"(?:{p.pattern})" for p in SECRETS.values()))
REDACTED = "<redacted>"


def find_tokens(text: str) -> list[str]:
    """The kinds of secret found in `text` (e.g. ["Hugging Face token"]), never the secrets themselves."""
    return [kind for kind, pattern in SECRETS.items() if pattern.search(text)]


def is_secret_field(name: str) -> bool:
    """Whether a config field holds a credential by its name (hub_token, api_key, ...)."""
    name = name.lower()
    return name.endswith(("_token", "api_key", "password", "secret")) or name in ("token", "hf_token")


def redact(obj: Any) -> Any:
    """A copy of a config (dicts, lists, strings) with secret fields and token-like strings replaced."""
    if isinstance(obj, dict):
        return {k: (REDACTED if is_secret_field(str(k)) and v else redact(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact(v) for v in obj)
    if isinstance(obj, str):
        return TOKEN_RE.sub(REDACTED, obj)
    return obj


def move_token_to_environment(args: Any, field: str = "hub_token") -> None:
    """Hand a token given as a flag to huggingface_hub through HF_TOKEN and clear the field.

    Trainer pickles its arguments into every checkpoint (training_args.bin) and loggers dump them,
    so a token left in the arguments would be written to disk; the environment is never saved.
    """
    token = getattr(args, field, None)
    if token:
        os.environ["HF_TOKEN"] = token
        setattr(args, field, None)


def install_log_redaction() -> None:
    """Make every log record created from now on replace token-shaped text (all loggers, all handlers)."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "redacts", False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call; let logging report it as usual
            return record
        if TOKEN_RE.search(message):
            record.msg, record.args = TOKEN_RE.sub(REDACTED, message), None
        return record

    redacting_factory.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)
