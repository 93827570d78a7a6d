"""A run whose training diverged (NaN or infinite losses or weights) ends with one error naming where it broke
and the fix, in pretraining and the classic recipes alike: it used to exit 0 and write NaN into metrics.json,
which is not JSON that other languages' parsers accept."""

from __future__ import annotations

from llmkit.errors import UserError


def diverged(
    where: str, what: str, learning_rate: float, *, flag: str = "--learning_rate", also: str = ""
) -> UserError:
    """The error that ends a diverged run: where (`step 40`), what broke, and the learning rate to lower."""
    return UserError(
        f"training diverged: at {where} {what}. Lower {flag} (this run: {learning_rate:g}){also}, and train into "
        "a new --output_dir."
    )
