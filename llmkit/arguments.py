"""Command-line and config-file parsing shared by every recipe (transformers' HfArgumentParser)."""

from __future__ import annotations

import sys
from pathlib import Path

from transformers import HfArgumentParser

from llmkit.errors import UserError


def parse_args(dataclass_types: tuple, argv: list[str] | None = None) -> tuple:
    """Parse flags, or a single YAML/JSON config file, into the given dataclasses."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser(dataclass_types)
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml", ".json")):
        path = Path(argv[0])
        if not path.is_file():
            raise UserError(f"config file {path} does not exist; pass an existing .yaml/.json file or flags.")
        try:
            if path.suffix == ".json":
                return parser.parse_json_file(str(path), allow_extra_keys=False)
            return parser.parse_yaml_file(str(path), allow_extra_keys=False)
        except ValueError as err:
            raise UserError(f"config file {path}: {err}") from None
    try:
        *parsed, unknown = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except SystemExit as exit_:
        if exit_.code not in (0, None):  # argparse already printed usage and the problem
            raise UserError("bad command-line arguments (see the message above; --help lists every flag).") from None
        raise
    except ValueError as err:  # raised by a dataclass's __post_init__ (e.g. TrainingArguments' checks)
        raise UserError(str(err)) from None
    if unknown:
        raise UserError(f"unknown arguments {' '.join(unknown)}; `--help` lists every flag.")
    return tuple(parsed)
