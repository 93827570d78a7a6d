"""Command-line and config-file parsing shared by every recipe.

One function, `parse_args(types, argv)`, turns flags into dataclasses. `--config FILE.yaml|json`
(or the file alone) supplies values and flags given beside it win over the file, as in TRL's and
LitGPT's scripts. Recipes whose dataclasses include transformers' `TrainingArguments` get
`HfArgumentParser` (every Trainer flag works); the others get a small dataclass -> argparse
parser, so the classic recipes start without importing transformers.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
import types
import typing
from pathlib import Path

from llmkit import record
from llmkit.errors import UserError

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")

_program: str | None = (
    None  # `llmkit NAME` when the llmkit command runs a recipe; else argparse's script name
)


def set_program(name: str) -> None:
    """Name the command in the usage line of the recipe that parses next (`llmkit tokenize`, ...)."""
    global _program
    _program = name


def parse_args(dataclass_types: tuple, argv: list[str] | None = None, *, hide: tuple[str, ...] = ()) -> tuple:
    """Parse flags, `--config FILE` plus overriding flags, or a lone YAML/JSON file into the given dataclasses.

    `hide` names fields of a shared dataclass that this recipe does not take: left out of --help, refused if given.
    """
    record.start_run_clock()
    argv = [expand_home(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    config_file, argv = split_config(argv)
    parser = _make_parser(dataclass_types)
    for action in parser._actions:
        if action.dest in hide:
            action.help = argparse.SUPPRESS
    if config_file is not None:
        apply_config(parser, config_file)
    try:
        namespace, unknown = parser.parse_known_args(argv)
    except SystemExit as exit_:
        if exit_.code not in (0, None):  # argparse already printed usage and the problem
            raise UserError(
                "bad command-line arguments (see the message above; --help lists every flag)."
            ) from None
        raise
    if unknown:
        raise UserError(f"unknown arguments {' '.join(unknown)}; `--help` lists every flag.")
    given = [name for name in hide if getattr(namespace, name, None) != parser.get_default(name)]
    if given:
        raise UserError(f"{_program or 'this recipe'} does not take --{given[0]}; `--help` lists its flags.")
    try:
        return tuple(_build(cls, namespace) for cls in dataclass_types)
    except ValueError as err:  # raised by a dataclass's __post_init__ (e.g. TrainingArguments' checks)
        raise UserError(str(err)) from None


def port_number(value: str) -> int:
    """An argparse type for --port: a number from 0 to 65535 (bind() raised OverflowError once models had loaded)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, got {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {number}")
    return number


def home_path(value: str) -> str:
    """value with a leading `~` spelled out as the home folder, as a shell does to a word that starts with it."""
    return os.path.expanduser(value) if value == "~" or value.startswith("~/") else value


def expand_home(arg: str) -> str:
    """`--flag=~/x` with the home folder spelled out: the shell expands `~` only at the start of a word, so
    `--output_dir=~/runs/x` made a folder named "~" in the working directory."""
    flag, equals, value = arg.partition("=")
    return f"{flag}={home_path(value)}" if flag.startswith("--") and equals else arg


def split_config(argv: list[str]) -> tuple[Path | None, list[str]]:
    """Pull `--config FILE` (or a lone config file as the only argument) out of argv."""
    if len(argv) == 1 and argv[0].endswith(CONFIG_SUFFIXES):
        return Path(argv[0]), []
    for i, arg in enumerate(argv):
        if arg == "--config" or arg.startswith("--config="):
            value = arg.split("=", 1)[1] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
            if not value.endswith(CONFIG_SUFFIXES):
                raise UserError(f"--config needs a .yaml, .yml or .json file, got {value!r}.")
            rest = argv[:i] + argv[i + (1 if "=" in arg else 2) :]
            return Path(value), rest
    return None, argv


def _uses_transformers(dataclass_types: tuple) -> bool:
    """Whether any dataclass derives from a transformers class (then HfArgumentParser knows its fields)."""
    return any(
        base.__module__.split(".")[0] == "transformers" for cls in dataclass_types for base in cls.__mro__
    )


def _inherit_help(parser: argparse.ArgumentParser, dataclass_types: tuple) -> None:
    """A field a recipe re-declares to change its default keeps its parent's help: without one, --help showed
    `--learning_rate LEARNING_RATE` with neither words nor the default (HfArgumentParser shows defaults after help)."""
    helps = {}
    for cls in dataclass_types:
        for base in reversed(cls.__mro__):  # the nearest class that says something wins
            if dataclasses.is_dataclass(base):
                helps |= {
                    f.name: f.metadata["help"] for f in dataclasses.fields(base) if f.metadata.get("help")
                }
    for action in parser._actions:
        if not action.help and action.option_strings and action.help is not argparse.SUPPRESS:
            action.help = helps.get(action.dest, "")


def _make_parser(dataclass_types: tuple) -> argparse.ArgumentParser:
    if _uses_transformers(dataclass_types):
        from transformers import HfArgumentParser  # imported only here: the classic recipes never pay for it

        parser = HfArgumentParser(dataclass_types, prog=_program, formatter_class=SnakeCaseHelpFormatter)
    else:
        parser = argparse.ArgumentParser(
            prog=_program, description=_description(), formatter_class=argparse.RawDescriptionHelpFormatter
        )
        for cls in dataclass_types:
            _add_dataclass(parser, cls)
    _inherit_help(parser, dataclass_types)
    add_config_flag(parser)
    return parser


class SnakeCaseHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """HfArgumentParser's help (defaults shown) with each flag once, snake_case: the dashed aliases it adds
    (`--output-dir`) still parse, but help and docs show one style."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        names = action.option_strings
        bare = _bare(names)
        snake = [n for n in names if not (n.startswith("--") and n[2:].replace("-", "_") in bare - {n[2:]})]
        if snake == names:
            return super()._format_action_invocation(action)
        shown = copy.copy(action)  # the parser keeps every spelling; only this help line drops the aliases
        shown.option_strings = snake
        return super()._format_action_invocation(shown)


def _bare(names: list[str]) -> set[str]:
    """The snake_case long flags among `names`, without their leading dashes."""
    return {n[2:] for n in names if n.startswith("--") and "-" not in n[2:]}


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    """List `--config FILE` in a parser's help (split_config reads it before argparse sees the flags)."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="a YAML or JSON file of flag values (flags given on the command line win)",
    )


def _description() -> str | None:
    main = sys.modules.get("__main__")
    return (main.__doc__ or "").strip() or None if main else None


def _shipped_config(path: Path) -> Path:
    """path, or where it is missing, the config of that name installed with llmkit: the README's
    `--config recipes/configs/NAME.yaml` (or a bare NAME.yaml) works from a pip install, outside a clone."""
    if path.is_file() or path.parent not in (Path("."), Path("recipes/configs")):
        return path
    import llmkit.recipes  # recipes/ itself, installed as a package

    shipped = Path(llmkit.recipes.__file__).parent / "configs" / path.name
    return shipped if shipped.is_file() else path


def apply_config(parser: argparse.ArgumentParser, path: Path) -> None:
    """Make the file's values the parser's defaults, so flags on the command line still win."""
    path = _shipped_config(path)
    if path.is_dir():
        raise UserError(f"config file {path} is a folder; pass the .yaml/.json file in it.")
    if not path.is_file():
        raise UserError(f"config file {path} does not exist; pass an existing .yaml/.json file.")
    try:
        values = _read_config(path)
    except UserError:
        raise
    except Exception as err:  # a JSON or YAML syntax error: say where
        raise UserError(f"config file {path} could not be read: {err}") from None
    if values is None:  # an empty file, or comments only: training on every default was surely not meant
        raise UserError(
            f"config file {path} is empty (or holds only comments); write one `name: value` line per flag "
            "(`learning_rate: 3e-5`) or leave --config out."
        )
    if not isinstance(values, dict):
        raise UserError(
            f"config file {path} must hold a mapping of argument names to values, not {type(values).__name__}."
        )
    known = {action.dest: action for action in parser._actions}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(
            f"config file {path} has unknown keys {', '.join(unknown)}; `--help` lists every argument."
        )
    for key in values:
        known[key].required = False  # the file provides it
        values[key] = _config_value(known[key], values[key], f"config file {path}: {key}")
    parser.set_defaults(**values)


def _read_config(path: Path) -> object:
    """The file's YAML or JSON content; a key given twice is refused (both parsers keep the last one silently)."""

    def once(pairs: list[tuple]) -> dict:
        keys = [k for k, _ in pairs]
        twice = sorted({str(k) for k in keys if keys.count(k) > 1})
        if twice:
            raise UserError(f"config file {path} gives {', '.join(twice)} twice; keep one of each.")
        return dict(pairs)

    if path.suffix == ".json":
        return json.loads(path.read_text(), object_pairs_hook=once)
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            # the keys written in this mapping; a `<<: *defaults` merge is YAML's own way to override, and kept
            written = [k for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"]
            once([(self.construct_object(k), None) for k in written])
            return super().construct_mapping(node, deep=deep)

    return yaml.load(path.read_text(), Loader=Loader)


def _config_value(action: argparse.Action, value: object, where: str) -> object:
    """A file's YAML/JSON value converted as its flag's text would be (argparse converts only string defaults)."""
    # what the shell does to a flag's value: `output_dir: ~/runs/x` made a folder named "~" in the working
    # directory, and the summary's "~/runs/x" pointed at the home folder, where nothing was
    if isinstance(value, str):
        value = home_path(value)
    if isinstance(value, list):
        value = [home_path(v) if isinstance(v, str) else v for v in value]
    many = action.nargs in ("+", "*")
    if isinstance(value, str) and action.type is not None and not many:
        _converted(
            action, [value], value, where
        )  # argparse would convert it too, but name a flag never typed
        return value
    if value is None or isinstance(value, str) or action.type is None:
        return value  # argparse converts a string default itself
    if isinstance(value, (list, dict)) and not (many and isinstance(value, list)):
        if action.type in (str, None):
            return value  # e.g. report_to: [tensorboard, wandb], which TrainingArguments reads as a list
        raise UserError(f"{where} must be a single value, not {type(value).__name__} {value!r}.")
    converted = _converted(action, value if isinstance(value, list) else [value], value, where)
    return converted if many else converted[0]


def _converted(action: argparse.Action, items: list, value: object, where: str) -> list:
    """Each item converted by the flag's type and checked against its choices; a UserError naming `where`."""
    try:
        converted = [action.type(item if isinstance(item, str) else str(item)) for item in items]
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        kind = {int: "a whole number", float: "a number"}.get(action.type, "a value its flag takes")
        if getattr(action.type, "__name__", "") in ("string_to_bool", "_str_to_bool"):  # transformers', ours
            kind = "true or false"
        raise UserError(f"{where} must be {kind}, got {value!r}.") from None
    if action.choices is not None and any(item not in action.choices for item in converted):
        raise UserError(f"{where} must be one of {', '.join(map(str, action.choices))}, got {value!r}.")
    return converted


def _build(cls, namespace: argparse.Namespace):
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return cls(**{k: v for k, v in vars(namespace).items() if k in names})


def _str_to_bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _add_dataclass(parser: argparse.ArgumentParser, cls) -> None:
    """One flag per field: `--name value`, booleans as `--flag [true|false]`, lists as `--name a b c`."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        kind = hints[f.name]
        args = typing.get_args(kind)
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None
            kind = next(a for a in args if a is not type(None))
            args = typing.get_args(kind)
        options: dict = {"help": f.metadata.get("help", "")}
        if f.default is not dataclasses.MISSING:
            options["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            options["default"] = f.default_factory()
        else:
            options["required"] = True
        if kind is bool:
            options.update(type=_str_to_bool, nargs="?", const=True)
        elif typing.get_origin(kind) is list:
            options.update(type=args[0], nargs="+")
        else:
            options["type"] = kind
        if "choices" in f.metadata:
            options["choices"] = f.metadata["choices"]
        names = [f"--{f.name}", *f.metadata.get("aliases", [])]
        parser.add_argument(*names, dest=f.name, **options)
