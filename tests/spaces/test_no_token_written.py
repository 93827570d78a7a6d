"""`space build`, `check` and `deploy` never write a token into a file they make, nor print one."""

import os
import shutil
import subprocess
import sys

import pytest

from llmkit.errors import UserError
from llmkit.spaces import build_space, serve_and_query
from tests.spaces.fake_hub import FakeHub

TOKEN = "hf_" + "Tk4Xw9Lq2Bn7Rv5Zc8Jm3Hd6Ps1Fy0Ga2E"  # built at run time: no file of the repo holds one
API_KEY = "sk-" + "live7Gh2Kd9Qw4Lz8Nx3Vb6Mc1"


def _files_holding(root, *secrets) -> list[str]:
    return [
        str(p) for p in root.rglob("*") if p.is_file() and any(s.encode() in p.read_bytes() for s in secrets)
    ]


@pytest.fixture
def run_dir(tmp_path, tiny_run):
    """A copy of a pretraining run's output_dir (checkpoints left out to keep it small)."""
    return shutil.copytree(tiny_run[0], tmp_path / "run", ignore=shutil.ignore_patterns("checkpoint-*"))


def test_build_refuses_a_run_folder_that_holds_a_token(tmp_path, run_dir):
    (run_dir / "hp_search").mkdir()
    (run_dir / "hp_search" / "best_config.yaml").write_text(f"learning_rate: 0.003\nhub_token: {TOKEN}\n")
    with pytest.raises(UserError) as err:
        build_space("text-generation", tmp_path / "space", model=str(run_dir))
    message = str(err.value)
    assert (
        "hp_search/best_config.yaml" in message and "Hugging Face token" in message and TOKEN not in message
    )
    assert not (tmp_path / "space").exists() and not (tmp_path / "space.building").exists()  # nothing written
    # What a Space never carries is not scanned either: a checkpoint's pickled arguments stay behind.
    (run_dir / "hp_search" / "best_config.yaml").unlink()
    (run_dir / "checkpoint-30").mkdir()
    (run_dir / "checkpoint-30" / "training_args.bin").write_bytes(b"\x80\x04hub_token" + TOKEN.encode())
    out = build_space("text-generation", tmp_path / "space", model=str(run_dir))
    assert not (out / "model" / "checkpoint-30").exists() and not _files_holding(out, TOKEN)


def test_build_with_a_token_in_the_environment_writes_it_nowhere(tmp_path, run_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    out = build_space("text-generation", tmp_path / "space", model=str(run_dir), title="Tiny GPT-2")
    assert not _files_holding(out, TOKEN, API_KEY)
    with pytest.raises(UserError, match="--title holds what looks like a token") as err:
        build_space("text-generation", tmp_path / "other", model=str(run_dir), title=f"demo {TOKEN}")
    assert TOKEN not in str(err.value) and not (tmp_path / "other").exists()


def test_an_app_that_prints_the_token_is_shown_redacted(tmp_path, monkeypatch):
    folder = tmp_path / "space"
    folder.mkdir()
    (folder / "app.py").write_text(
        "import os\nprint('token is', os.environ['HF_TOKEN'])\nraise SystemExit(3)\n"
    )
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with pytest.raises(UserError, match="exited with status 3") as err:
        serve_and_query(folder, timeout=60)
    assert "token is <redacted>" in str(err.value) and TOKEN not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space"]  # no log file left behind


def _deploy(folder, hub, home, *args):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "0",
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(home),
        "MY_API_KEY": API_KEY,
    }
    return subprocess.run(
        [sys.executable, "-m", "llmkit.cli", "space", "deploy", str(folder), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.slow
def test_deploy_masks_a_token_the_server_echoes_and_writes_no_file(tmp_path, store):
    folder = build_space("rag-chat", tmp_path / "space", store=str(store))
    home = tmp_path / "hf-home"
    for echo in ("echo_credentials", "echo_secrets"):
        hub = FakeHub(**{echo: True})
        try:
            failed = _deploy(folder, hub, home, "--repo-id", "tester/docs", "--secret", "MY_API_KEY")
        finally:
            hub.close()
        echoed = TOKEN if echo == "echo_credentials" else API_KEY
        # the server got it
        assert any(echoed in (r["auth"] or "") + r["body"].decode(errors="replace") for r in hub.requests)
        assert failed.returncode == 2 and "refused the upload" in failed.stderr and "***" in failed.stderr, (
            failed.stderr
        )
        assert TOKEN not in failed.stdout + failed.stderr and API_KEY not in failed.stdout + failed.stderr
        assert not _files_holding(tmp_path, TOKEN, API_KEY)  # the Space folder, HF_HOME, anything beside them
    hub = FakeHub()
    try:
        done = _deploy(folder, hub, home, "--repo-id", "tester/docs", "--secret", "MY_API_KEY")
    finally:
        hub.close()
    assert done.returncode == 0, done.stderr[-2000:]
    assert TOKEN not in done.stdout + done.stderr and API_KEY not in done.stdout + done.stderr
    assert not _files_holding(tmp_path, TOKEN, API_KEY)
    # The key reaches the Hub only as a Space secret, never inside a committed file.
    commit = next(r for r in hub.requests if "/commit/" in r["path"])
    assert API_KEY.encode() not in commit["body"] and TOKEN.encode() not in commit["body"]
