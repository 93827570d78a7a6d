"""Every command's --help shows one flag style, snake_case, and names --config FILE; dashed spellings still parse."""

import re

import pytest

from llmkit.arguments import _make_parser, parse_args
from llmkit.cli import _space_parser
from llmkit.rag.commands import _parser as rag_parser
from llmkit.recipes import RECIPES

TRAINER_RECIPES = [name for name in RECIPES if not name.startswith("train-")]


def _dashed(text: str) -> list[str]:
    return [f for f in re.findall(r"(?<![\w-])--[a-z][\w-]*", text) if "-" in f[2:]]


@pytest.mark.parametrize("name", TRAINER_RECIPES)
def test_trainer_recipe_help_lists_each_flag_once_in_snake_case(name):
    text = _make_parser(RECIPES[name].load().TYPES).format_help()
    assert "--config FILE" in text and "--output_dir OUTPUT_DIR" in text
    assert _dashed(text) == []


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_flag_says_what_it_does(name):
    # a field a recipe re-declared for its own default (pretrain's --learning_rate 1e-3) lost its help, and with
    # it the default: `--learning_rate LEARNING_RATE` alone
    parser = _make_parser(RECIPES[name].load().TYPES)
    silent = [a.dest for a in parser._actions if a.option_strings and not a.help]
    assert silent == [], silent


def test_dashed_spellings_still_parse_for_the_trainer_recipes(tmp_path):
    argv = ["--output-dir", str(tmp_path / "out"), "--learning-rate", "0.01", "--no-remove-unused-columns"]
    *_, args = parse_args(RECIPES["finetune-t5"].load().TYPES, argv)
    assert (args.output_dir, args.learning_rate, args.remove_unused_columns) == (
        str(tmp_path / "out"),
        0.01,
        False,
    )


@pytest.mark.parametrize("make", [rag_parser, _space_parser])
def test_commands_with_subcommands_say_where_config_goes(make):
    text = make().format_help()
    assert "--config FILE" in text and "SUBCOMMAND --help" in text
