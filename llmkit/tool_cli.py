"""What the tool commands (`llmkit rag ...`, `llmkit space ...`) share with the recipes' command line.

- Flags are snake_case (`--repo_id`); the dashed spelling (`--repo-id`) is still accepted, but help
  and docs show one style.
- Every subcommand takes `--config FILE` (YAML or JSON of flag values, positional arguments
  included); flags given on the command line win, as for the recipes.
- Warnings: llmkit's own become one plain `note:` line on stderr; other libraries' warnings, which
  a user cannot act on, are not shown.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from llmkit.arguments import apply_config, expand_home, split_config


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    found = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _option_strings(sub)
    return found


def subcommand_parser(
    prog: str, description: str
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """A command with subcommands (`llmkit rag`), whose help says where --config goes; it and its subparsers."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="Every subcommand takes --config FILE (a YAML or JSON file of its flag values; flags given on the "
        "command line win), after the subcommand: `%(prog)s SUBCOMMAND --help` lists its flags.",
    )
    return parser, parser.add_subparsers(dest="command", required=True)


def snake_case_flags(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """argv with `--dashed-flag` spelled `--dashed_flag` wherever that is one of the parser's flags."""
    known = _option_strings(parser)
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        name, eq, value = arg.partition("=")
        snake = "--" + name[2:].replace("-", "_")
        out.append(
            snake + eq + value if name.startswith("--") and "-" in name[2:] and snake in known else arg
        )
    return out


def parse_command(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse a command without subcommands (`llmkit generate`): dashed aliases and `--config FILE` applied."""
    argv = snake_case_flags(parser, [expand_home(arg) for arg in argv])
    config, argv = split_config(argv)
    if config is not None:
        apply_config(parser, config)
    return parser.parse_args(argv)


def parse_subcommand(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse `SUBCOMMAND [flags]` with dashed aliases and `--config FILE` applied to that subcommand."""
    argv = snake_case_flags(parser, [expand_home(arg) for arg in argv])
    config, argv = split_config(argv) if len(argv) > 1 else (None, argv)
    if config is not None:
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        chosen = subparsers.choices.get(argv[0]) if argv else None
        if chosen is None:
            parser.error("put --config FILE after the subcommand, e.g. `index --config index.yaml`")
        apply_config(chosen, Path(config))
    return parser.parse_args(argv)


@contextlib.contextmanager
def plain_warnings() -> Iterator[None]:
    """Show llmkit's warnings as `note: ...` lines (no source line, no class name); hide other libraries'."""

    # warnings.showwarning's signature, fixed by the warnings module.
    def show(message, category, filename, lineno, file=None, line=None):
        if "llmkit" in Path(filename).parts:
            print(f"note: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield
