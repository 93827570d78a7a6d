"""What a secret looks like, and how llmkit keeps secrets out of every file and log line it writes."""

from __future__ import annotations

import logging
import os
import re
from typing import Any

# Patterns of credentials that must never reach a file, a log or a public Space. Each matches the token's own
# shape with no word boundary after it, and a Hugging Face token none before it either: `hf_..._old`, a token
# glued to a letter in a binary file, or followed by a non-ASCII byte is still found. An OpenAI-style key glued
# to a letter counts only with a key's own look (a known prefix, or 20+ random letters and digits of both
# cases), so that "task-2024-Report-final" or "disk-partition-tool" is not one.
SECRETS: dict[str, re.Pattern[str]] = {
    "Hugging Face token": re.compile(r"hf_[A-Za-z0-9]{30,}"),
    "OpenAI-style API key": re.compile(
        r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{20,}"
        r"|sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}"
        r"|sk-(?=[A-Za-z0-9]{0,40}?[0-9])(?=[A-Za-z0-9]{0,40}?[a-z])(?=[A-Za-z0-9]{0,40}?[A-Z])[A-Za-z0-9]{20,}"
    ),
    "AWS access key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "private key": re.compile(r"-----BEGIN (RSA |EC |OPENSSH )?PRIVATE KEY-----"),
}
# The literal text every match of each pattern starts with (the scanner finds these first, at memory speed).
PREFIXES = {
    "Hugging Face token": "hf_",
    "OpenAI-style API key": "sk-",
    "AWS access key": "AKIA",
    "private key": "-----BEGIN ",
}
TOKEN_RE = re.compile("|".join(f"(?:{p.pattern})" for p in SECRETS.values()))
# What redaction hides of a private key: the whole block, not only its first line.
PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN (RSA |EC |OPENSSH )?PRIVATE KEY-----[\s\S]*?(-----END (RSA |EC |OPENSSH )?PRIVATE KEY-----|$)"
)
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
        return TOKEN_RE.sub(REDACTED, PRIVATE_KEY_BLOCK.sub(REDACTED, obj))
    return obj


class StreamRedactor:
    """Redact a text that arrives piece by piece (a streamed answer) before any of it is shown.

    `update(text_so_far)` returns what may be shown now: complete words only, since the end of a
    word may still be the start of a token; `update(text, final=True)` returns the rest.
    """

    def __init__(self) -> None:
        self.shown = ""

    def update(self, text: str, final: bool = False) -> str:
        """The redacted text to show beyond what was already shown."""
        cut = len(text) if final else max(text.rfind(" "), text.rfind("\n")) + 1
        begin = text.rfind("-----BEGIN", 0, cut)
        if not final and begin >= 0 and "-----END" not in text[begin:cut]:
            cut = begin  # a private key block is shown only once it is whole (and then redacted)
        safe = redact(text[:cut])
        if len(safe) <= len(self.shown):
            return ""
        new, self.shown = safe[len(self.shown) :], safe
        return new


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
