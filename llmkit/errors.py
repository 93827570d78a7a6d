"""One error type for a user's mistake, and the wrapper that turns it into a clean exit."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with the user's input; the message names the problem and the fix."""


def run_cli(main: Callable[[], object]) -> None:
    """Run `main`; on a UserError print `error: ...` (no traceback) and exit with status 2."""
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: checkpoints already saved are kept; run the same command to resume.", file=sys.stderr)
        sys.exit(130)
