"""A missing optional dependency ends in one line naming the llmkit extra to install, never a traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmkit.errors import OPTIONAL

ROOT = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter: each case makes one module unimportable (sys.modules[name] = None, as if it were
# not installed), drops llmkit's own modules so they import it again, and runs a real entry point.
SCRIPT = r"""
import contextlib, io, json, runpy, sys
from pathlib import Path
work = Path(sys.argv[1])
(work / "docs").mkdir(exist_ok=True)
(work / "docs" / "a.md").write_text("Kettles boil water.")
(work / "paper.pdf").write_bytes(b"%PDF-1.4 whatever")
from llmkit.errors import OPTIONAL, run_cli
CASES = [
    ("faiss", ["rag", "index", str(work / "docs"), "--store", str(work / "s1")]),
    ("sentence_transformers", ["rag", "index", str(work / "docs"), "--store", str(work / "s2")]),
    ("pypdf", ["rag", "index", str(work / "paper.pdf"), "--store", str(work / "s3")]),
    ("gradio", "apps/rag_chat.py"),
] + [(name, None) for name in OPTIONAL if name not in ("faiss", "sentence_transformers", "pypdf", "gradio")]
results = {}
for name, how in CASES:
    saved = {k: v for k, v in sys.modules.items() if k == name or k.startswith(name + ".") or k.startswith("llmkit")}
    for k in saved:
        del sys.modules[k]
    sys.modules[name] = None
    err, code = io.StringIO(), None
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            from llmkit.errors import run_cli
            if isinstance(how, list):
                from llmkit.cli import main
                main(how)
            elif how:
                sys.argv = [how, "--store", str(work / "nowhere")]
                runpy.run_path(how, run_name="__main__")
            else:
                run_cli(lambda: __import__(name))
    except SystemExit as exit_:
        code = exit_.code
    except BaseException as other:
        code = repr(other)
    del sys.modules[name]
    sys.modules.update(saved)
    results[name] = [code, err.getvalue()]
print(json.dumps(results))
"""


def test_the_table_matches_the_extras_of_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for module, (package, in_extras) in OPTIONAL.items():
        for extra in in_extras:
            names = [r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in extras[extra]]
            assert package in names, (module, package, extra)


def test_each_missing_optional_module_names_its_extra(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.splitlines()[-1])
    assert set(results) == set(OPTIONAL)
    for name, (code, err) in results.items():
        package, extras = OPTIONAL[name]
        assert code == 2, (name, code, err[-1500:])
        assert f"pip install 'llmkit[{extras[0]}]'" in err and package in err, (name, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (name, err)
