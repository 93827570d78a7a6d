"""The Space templates ship inside the wheel: an installed llmkit builds and checks every template."""

import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

from llmkit.spaces import TEMPLATES
from tests.helpers import run_together

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_an_installed_wheel_builds_and_checks_every_template(tmp_path, space_artifacts):
    # Build from a copy of the sources, so the build's own folders never land in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for folder in ("llmkit", "recipes", "apps", "spaces"):
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # Offline with this environment's setuptools when it is recent enough (as pyproject.toml asks);
    # otherwise pip fetches the build backend from the package index, as any `pip install` would.
    offline = Version(version("setuptools")) >= Version("77")
    isolation = ["--no-build-isolation"] if offline else []
    wheel_dir = str(tmp_path / "whl")
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", wheel_dir, str(src)],
        tmp_path,
        env,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert "absent from the `packages` configuration" not in built.stdout + built.stderr  # a quiet build
    (wheel,) = (tmp_path / "whl").glob("llmkit-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    packages = {
        p.parent.relative_to(REPO).as_posix()
        for p in (REPO / "llmkit").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert {f"{p}/" for p in packages} <= {n.rsplit("/", 1)[0] + "/" for n in shipped}, (
        "a package is missing from the wheel"
    )
    assert {f"llmkit/recipes/{p.name}" for p in (REPO / "recipes").glob("*.py")} <= shipped
    assert {f"llmkit/apps/{p.name}" for p in (REPO / "apps").glob("*.py")} <= shipped  # `llmkit app NAME`
    configs = [*(REPO / "recipes/configs").glob("*.yaml"), *(REPO / "recipes/accelerate").glob("*.yaml")]
    # the README's --config paths
    assert {f"llmkit/{p.relative_to(REPO).as_posix()}" for p in configs} <= shipped
    for name in TEMPLATES:
        for part in ("README.md", "app.py", "requirements.txt"):
            assert f"llmkit/spaces/templates/{name}/{part}" in shipped, (name, part)

    target = tmp_path / "site"
    installed = _run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        tmp_path,
        env,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]

    # A user's directory outside the checkout, with only the installed package on the path.
    home = tmp_path / "user"
    home.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1"}
    where = _run([sys.executable, "-c", "import llmkit; print(llmkit.__file__)"], home, env)
    assert where.stdout.strip() == str(target / "llmkit" / "__init__.py"), where.stdout + where.stderr
    cli = [sys.executable, "-m", "llmkit.cli"]
    # every recipe is a command, so are the apps, and the README's config paths read the installed copies
    for proc in run_together(
        [*cli, "--help"],
        [*cli, "train-mlp", "--help"],
        [*cli, "pretrain", "--config", "recipes/configs/pretrain-tiny.yaml", "--help"],
        [*cli, "app", "models", "--help"],
        cwd=home,
        env=env,
    ):
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    cli = [*cli, "space"]
    assert set(space_artifacts) == set(TEMPLATES)
    for name, kwargs in space_artifacts.items():
        extra = [part for flag, path in kwargs.items() for part in (f"--{flag}", path)]
        proc = _run([*cli, "build", name, "--out", name, *map(str, extra)], home, env)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert (home / name / "app.py").read_text() == (REPO / "spaces" / name / "app.py").read_text()
        # The Space carries llmkit but not the other templates: it already is one.
        assert (home / name / "llmkit/spaces/templates/__init__.py").is_file()
        assert not list((home / name / "llmkit/spaces/templates").glob("*/app.py"))
        check = _run([*cli, "check", name, "--no-serve"], home, env)
        assert check.returncode == 0 and "files OK" in check.stdout, check.stderr[-3000:]
    # A Space built from this checkout (an editable install, as `make` sets up) carries the same llmkit modules
    # as one built from the wheel: it once lacked llmkit.spaces.templates, which every app.py imports.
    from llmkit.spaces import build_space

    def modules(space: Path) -> set[str]:
        return {p.relative_to(space).as_posix() for p in (space / "llmkit").rglob("*.py")}

    assert modules(build_space("classic", tmp_path / "from-checkout")) == modules(home / "classic")
