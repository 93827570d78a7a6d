"""What a folder holds (llmkit.folders.visible_files), the rule every loader uses: linked sub-folders are data
too, hidden ones are not, and a link upward neither loops nor reads outside the folder."""

import os

import pytest

from llmkit.folders import visible_files


def test_linked_sub_folders_are_followed_once_and_links_upward_skipped(tmp_path):
    shared = tmp_path / "shared-disk" / "cats"
    shared.mkdir(parents=True)
    (shared / "tabby.png").write_bytes(b"x")
    root = tmp_path / "train"
    (root / "dogs" / ".ipynb_checkpoints").mkdir(parents=True)
    (root / "dogs" / "rex.png").write_bytes(b"x")
    (root / "dogs" / ".ipynb_checkpoints" / "rex-checkpoint.png").write_bytes(b"x")
    (root / "dogs" / ".DS_Store").write_bytes(b"x")
    (tmp_path / "outside.png").write_bytes(b"x")
    os.symlink(shared, root / "cats")  # was left out without a word: the class had no images
    os.symlink(shared, root / "dogs" / "cats-again")  # the same real folder: read once
    os.symlink("..", root / "dogs" / "up")  # back to the top: would loop
    os.symlink("../..", root / "dogs" / "up-and-out")  # above the top: would read outside.png
    os.symlink(tmp_path / "nowhere", root / "dangling")
    with pytest.warns(UserWarning, match="skipped 1 link\\(s\\) that point to nothing \\(first: .*dangling"):
        found = [p.relative_to(root).as_posix() for p in visible_files(root)]
    assert found == ["cats/tabby.png", "dogs/rex.png"]
    assert [p.name for p in visible_files(root / "dogs", recursive=False)] == ["rex.png"]


def test_a_refused_command_leaves_no_empty_folders_it_made(tmp_path, capsys):
    # `llmkit pretrain --tokenized_dataset nothere --output_dir a/b/c` was refused and left a/b behind
    from llmkit.errors import UserError, run_cli
    from llmkit.folders import writable_folder

    (tmp_path / "kept").mkdir()

    def refused():
        writable_folder(tmp_path / "a" / "b" / "c", "--output_dir a/b/c")
        writable_folder(tmp_path / "kept" / "made" / "sub", "--store kept/made/sub")
        (tmp_path / "kept" / "made" / "notes.txt").write_text("written before the refusal")
        raise UserError("nothere is not a tokenized dataset")

    with pytest.raises(SystemExit):
        run_cli(refused)
    assert not (tmp_path / "a").exists() and not (tmp_path / "kept" / "made" / "sub").exists()
    assert (tmp_path / "kept" / "made" / "notes.txt").is_file()  # what holds a file stays, and what was there
