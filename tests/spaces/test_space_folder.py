"""What a Space folder holds is what runs on the Hub: llmkit whole (also when built from a checkout), checked
without the local install's help."""

import subprocess
import sys

import pytest

from llmkit.errors import UserError
from llmkit.spaces import build_space, serve_and_query

# Drops the import hook of an editable install (`pip install -e .`), as the Hub has none.
WITHOUT_EDITABLE = (
    "import sys; "
    "sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable__')]; "
)


def test_a_space_carries_every_llmkit_package_also_when_built_from_a_checkout(tmp_path):
    out = build_space("classic", tmp_path / "space")
    for package in ("spaces/templates", "recipes", "apps"):  # each kept outside llmkit/ in a checkout
        assert (out / "llmkit" / package / "__init__.py").is_file(), package
    assert not list((out / "llmkit" / "spaces" / "templates").glob("*/app.py"))  # the Space is already one
    # what every app.py imports, from the folder alone
    code = WITHOUT_EDITABLE + "import llmkit.spaces.templates as t, llmkit.recipes; print(t.__file__)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=out, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(out / "llmkit" / "spaces" / "templates" / "__init__.py")


def test_check_runs_the_app_with_only_what_the_folder_carries(tmp_path):
    # a Space whose llmkit lacks a module: on the Hub its app cannot start, so check must not start it either
    (tmp_path / "llmkit").mkdir()
    (tmp_path / "llmkit" / "__init__.py").write_text("")
    (tmp_path / "app.py").write_text("import llmkit.apps\n")
    with pytest.raises(UserError, match="(?s)exited with status 1.*No module named 'llmkit.apps'"):
        serve_and_query(tmp_path, timeout=60)
