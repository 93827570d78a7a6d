"""Where `llmkit tokenize` writes: never a half-written dataset, never over a folder it did not write or one
another run is writing, never the folder the shell is in; a kill between the two renames of a replacement is
recovered by the next run."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmkit.data import load_tokenized
from llmkit.data.publish import recover_publish
from llmkit.data.tokenized import METADATA
from llmkit.errors import UserError
from tests.data.test_tokenized import tokenize


def test_output_is_never_half_written(tmp_path, corpus_dir, monkeypatch):
    out = tmp_path / "ds"
    stale = tmp_path / ".ds.tmp-999999999"  # what a kill -9 leaves behind
    stale.mkdir()
    (stale / "junk").write_text("x")
    from datasets import DatasetDict as DD

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(DD, "save_to_disk", interrupted)
    with pytest.raises(
        KeyboardInterrupt, match="nothing was written to .*run the same command to start again"
    ):
        tokenize(out, corpus_dir)  # no word of checkpoints: tokenize has none
    assert not out.exists()  # nothing that looks like a dataset
    # the stale and the interrupted temporaries are gone
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    monkeypatch.undo()

    tokenize(out, corpus_dir)
    assert (out / METADATA).is_file()
    with pytest.raises(UserError, match="already exists and holds a tokenized dataset"):
        tokenize(out, corpus_dir)
    tokenize(out, corpus_dir, "--overwrite_output_dir", "true", "--block_size", "16")
    assert json.loads((out / METADATA).read_text())["block_size"] == 16
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_the_working_directory_is_refused_as_output_dir(tmp_path, corpus_dir, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    for out in (Path("."), tmp_path):  # the shell was left in a deleted folder (`here` replaced by a rename)
        with pytest.raises(
            UserError, match="is the folder you are working in.*such as --output_dir tokenized"
        ):
            tokenize(out, corpus_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"] and not any(here.iterdir())
    assert (tokenize(Path("tokenized"), corpus_dir) / METADATA).is_file()


def test_a_second_tokenize_into_the_same_folder_is_refused(tmp_path, corpus_dir):
    out = tmp_path / "ds"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    busy = tmp_path / f".ds.tmp-{other.pid}"  # the work folder of a run still going
    busy.mkdir()
    try:
        with pytest.raises(
            UserError, match=f"another `llmkit tokenize` \\(process {other.pid}\\) is writing"
        ):
            tokenize(out, corpus_dir)
    finally:
        other.kill()
        other.wait()
    assert busy.is_dir() and not out.exists()  # the other run's work is left alone


def test_a_dataset_written_meanwhile_is_not_replaced(tmp_path, corpus_dir, tokenized, monkeypatch):
    out = tmp_path / "ds"
    import llmkit.data.tokenized as module

    def the_other_run_finishes_first(*args, **kwargs):
        shutil.copytree(tokenized, out)
        return original(*args, **kwargs)

    original = module._write_records
    monkeypatch.setattr(module, "_write_records", the_other_run_finishes_first)
    with pytest.raises(UserError, match="another `llmkit tokenize` wrote .* while this one ran"):
        tokenize(out, corpus_dir, "--seed", "7")
    assert load_tokenized(out)[2] == load_tokenized(tokenized)[2]  # the first one's dataset, whole


def test_a_pipe_is_named_as_such(tmp_path, corpus_dir):
    fifo = tmp_path / "corpus.txt"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="is not a regular file \\(a pipe or a device\\)"):
        tokenize(tmp_path / "ds", fifo)  # it said "does not exist"


def test_overwrite_never_replaces_a_file_or_a_folder_tokenize_did_not_write(tmp_path, corpus_dir):
    notes = tmp_path / "notes.txt"
    notes.write_text("precious")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("keep")
    for out, what in ((notes, "a file"), (docs, "a folder of other files")):
        with pytest.raises(UserError, match=f"is {what}, not a tokenized dataset"):
            tokenize(out, corpus_dir, "--overwrite_output_dir", "true")  # it hid the file, deleted the folder
    assert notes.read_text() == "precious" and (docs / "a.md").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (tokenize(empty, corpus_dir) / METADATA).is_file()  # an empty folder holds nothing to lose


@pytest.mark.parametrize("new_complete", [True, False])
def test_a_kill_between_the_two_renames_is_recovered(tmp_path, corpus_dir, tokenized, new_complete):
    # What `tokenize --overwrite_output_dir` killed between its renames leaves: the old dataset aside,
    # the new one (complete or not) in the killed run's temporary folder, nothing at the path.
    out = tmp_path / "ds"
    shutil.copytree(tokenized, tmp_path / ".ds.old-999999999")  # blocks of 32
    new = tokenize(tmp_path / "new", corpus_dir, "--block_size", "16")
    (tmp_path / ".ds.tmp-999999999").mkdir()
    new.rename(tmp_path / ".ds.tmp-999999999" / "data")
    if not new_complete:
        (tmp_path / ".ds.tmp-999999999" / "data" / METADATA).unlink()
    with pytest.raises(UserError, match="left it aside"):
        load_tokenized(out)

    with pytest.raises(UserError, match="already exists and holds a tokenized dataset"):
        tokenize(out, corpus_dir)  # the next run recovers first, then refuses to overwrite
    splits, _, meta = load_tokenized(out)
    assert meta["block_size"] == (16 if new_complete else 32) and len(splits["train"]) > 0
    tokenize(out, corpus_dir, "--overwrite_output_dir", "true")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # nothing left aside


def test_a_kill_after_the_swap_leaves_only_the_new_dataset(tmp_path, tokenized):
    out = tmp_path / "ds"
    shutil.copytree(tokenized, out)
    shutil.copytree(tokenized, tmp_path / ".ds.old-999999999")
    assert recover_publish(out, METADATA) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"] and load_tokenized(out)[2]
