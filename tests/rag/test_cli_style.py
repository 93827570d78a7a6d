"""`llmkit rag ...` and `llmkit space ...` share the recipes' style: snake_case flags (dashed ones still accepted)
and `--config FILE` on every subcommand, the command line winning."""

import argparse
import json
import re

import pytest

from llmkit.cli import _space_parser
from llmkit.cli import main as llmkit_main
from llmkit.rag.commands import _parser as rag_parser
from llmkit.tool_cli import snake_case_flags
from tests.rag.helpers import QUESTIONS, TOPICS


def _subcommands(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("make", [rag_parser, _space_parser])
def test_every_subcommand_help_lists_config_and_only_snake_case_flags(make):
    for name, sub in _subcommands(make()).items():
        text = sub.format_help()
        assert "--config FILE" in text, name
        flags = re.findall(r"(?<![\w-])--[a-z][\w-]*", text)
        assert flags and all("-" not in f[2:] for f in flags), (name, flags)


def test_dashed_spellings_are_still_accepted():
    parser = _space_parser()
    argv = ["deploy", "dir", "--repo-id", "me/x", "--dry-run", "--private"]
    assert snake_case_flags(parser, argv) == ["deploy", "dir", "--repo_id", "me/x", "--dry_run", "--private"]
    # values are never touched, nor anything after "--"
    assert snake_case_flags(parser, ["check", "--question", "--no-such-flag"])[-1] == "--no-such-flag"


def test_config_files_give_flag_values_and_the_command_line_wins(tmp_path, embedder, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("rebase.md", "tcp.md"):
        (docs / name).write_text(TOPICS[name])
    store = tmp_path / "store"
    (tmp_path / "index.yaml").write_text(
        f"paths: [{docs}]\nstore: {store}\nchunk_tokens: 64\nchunk_overlap: 8\n"
    )
    llmkit_main(["rag", "index", "--config", str(tmp_path / "index.yaml")])
    assert json.loads(capsys.readouterr().out)["documents"] == 2
    assert json.loads((store / "manifest.json").read_text())["chunk_tokens"] == 64

    (tmp_path / "ask.json").write_text(
        json.dumps({"store": str(store), "k": 1, "json": True, "mode": "dense"})
    )
    llmkit_main(["rag", "ask", QUESTIONS[5][0], "--config", str(tmp_path / "ask.json"), "--k", "2"])
    result = json.loads(capsys.readouterr().out)
    assert len(result["sources"]) == 2 and result["sources"][0]["doc_id"] == "docs/rebase.md"

    (tmp_path / "bad.yaml").write_text("stor: typo\n")
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["rag", "ask", "hi", "--config", str(tmp_path / "bad.yaml")])
    assert exit_.value.code == 2 and "unknown keys stor" in capsys.readouterr().err

    (tmp_path / "space.yaml").write_text(f"template: rag-chat\nout: {tmp_path / 'space'}\nstore: {store}\n")
    llmkit_main(["space", "build", "--config", str(tmp_path / "space.yaml"), "--title", "From flags"])
    assert "title: From flags" in (tmp_path / "space" / "README.md").read_text()
    llmkit_main(["space", "check", str(tmp_path / "space"), "--no-serve"])  # the old spelling still works
    assert "files OK" in capsys.readouterr().out
