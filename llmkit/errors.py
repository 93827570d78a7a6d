"""One error type for a user's mistake, and the wrapper that turns it into a clean exit."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from types import ModuleType


class UserError(Exception):
    """A problem with the user's input; the message names the problem and the fix."""


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
        print(f"error: {err}", file=sys.stderr)
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
        raise UserError(
            f"this needs the {module.split('.')[0]!r} package: pip install 'llmkit[{extra}]'."
        ) from None
