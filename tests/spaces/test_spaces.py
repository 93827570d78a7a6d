"""Spaces: every template builds, `check` catches broken folders, a built Space serves, `deploy` talks to the Hub."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmkit.errors import UserError
from llmkit.spaces import TEMPLATES, build_space, serve_and_query, validate
from tests.spaces.fake_hub import FakeHub


def test_every_template_builds_a_valid_folder(tmp_path, space_artifacts):
    assert set(space_artifacts) == set(TEMPLATES)
    for name, kwargs in space_artifacts.items():
        out = build_space(name, tmp_path / name, **{k: str(v) for k, v in kwargs.items()})
        assert validate(out) == [], name
        readme = (out / "README.md").read_text()
        assert "sdk: gradio" in readme and "sdk_version: " in readme and "app_file: app.py" in readme
        assert (out / "llmkit" / "ui" / "rag_chat.py").is_file()  # llmkit travels with the Space
        requirements = (out / "requirements.txt").read_text()
        assert "torch==2.13.0" in requirements and "/whl/cpu" in requirements and "+cpu" not in requirements
        assert "*.safetensors filter=lfs" in (out / ".gitattributes").read_text()
        assert not list(out.rglob("checkpoint-*")) and not list(out.rglob("optimizer.pt"))


def test_build_errors(tmp_path, store, tiny_run, classifier_dir, qa_model_dir, image_models, monkeypatch):
    with pytest.raises(UserError, match="unknown template"):
        build_space("chatbot", tmp_path / "a")
    with pytest.raises(UserError, match="serves a store: pass --store"):
        build_space("rag-chat", tmp_path / "b")
    with pytest.raises(UserError, match="missing does not exist"):
        build_space("text-generation", tmp_path / "c", model=str(tmp_path / "missing"))
    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(UserError, match="is a file, not a folder"):
        build_space("rag-chat", tmp_path / "c", store=str(tmp_path / "notes.txt"))
    with pytest.raises(UserError, match="is not an llmkit RAG store"):
        build_space("rag-chat", tmp_path / "c", store=str(tiny_run[0]))
    with pytest.raises(UserError, match="is not a model folder"):
        build_space("text-generation", tmp_path / "c", model=str(store))
    with pytest.raises(UserError, match="not a causal language model; the classifier template serves it"):
        build_space("text-generation", tmp_path / "c", model=str(classifier_dir))
    with pytest.raises(UserError, match="use text-generation for a causal LM"):
        build_space("classifier", tmp_path / "c", model=str(tiny_run[0]))
    with pytest.raises(
        UserError, match="not a object-detection model; the image-classifier template serves it"
    ):
        build_space("detector", tmp_path / "c", model=str(image_models["image-classification"]))
    with pytest.raises(UserError, match="not a image-classification model; pass a finetune-image"):
        build_space("image-classifier", tmp_path / "c", model=str(classifier_dir))
    with pytest.raises(UserError, match="image-classifier for an image model"):
        build_space("classifier", tmp_path / "c", model=str(image_models["image-classification"]))
    with pytest.raises(UserError, match="question-answering for an extractive QA model"):
        build_space("classifier", tmp_path / "c", model=str(qa_model_dir))
    with pytest.raises(
        UserError, match="not an extractive question-answering model; pass a `llmkit finetune-qa`"
    ):
        build_space("question-answering", tmp_path / "c", model=str(classifier_dir))
    with pytest.raises(UserError, match="is a file; pass a folder"):
        build_space("rag-chat", tmp_path / "notes.txt", store=str(store))
    with pytest.raises(UserError, match="overlap"):
        build_space("rag-chat", store / "space", store=str(store))
    assert not (tmp_path / "c").exists() and not list(tmp_path.glob("*.building"))

    build_space("rag-chat", tmp_path / "d", store=str(store))
    with pytest.raises(UserError, match="exists and is not empty"):
        build_space("rag-chat", tmp_path / "d", store=str(store))
    build_space("rag-chat", tmp_path / "d", store=str(store), title="Again", overwrite=True)
    assert "title: Again" in (tmp_path / "d" / "README.md").read_text()
    # --overwrite replaces a Space it built, never a folder of the user's.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match="not a Space built by llmkit"):
        build_space("rag-chat", tmp_path / "mine", store=str(store), overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"
    # the folder the shell is in (even a Space llmkit built) is replaced by a rename: refused
    monkeypatch.chdir(tmp_path / "d")
    with pytest.raises(UserError, match="--out . is the folder you are working in.*such as --out my-space"):
        build_space("rag-chat", ".", store=str(store), overwrite=True)
    assert (tmp_path / "d" / "app.py").is_file()


def test_a_kill_during_overwrite_leaves_a_whole_space(tmp_path, monkeypatch):
    """--overwrite deleted the old Space before putting the new one in place: a kill in between left a folder
    half deleted, which the same command then refused as "not a Space built by llmkit"."""
    import shutil

    out = tmp_path / "space"
    build_space("classic", out)
    rmtree = shutil.rmtree

    def killed(path, *args, **kwargs):
        path = Path(path)
        if (path / "app.py").exists() and not path.name.endswith(".building"):
            (path / "app.py").unlink()  # its first file deleted, then the kill
            raise KeyboardInterrupt
        return rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        build_space("classic", out, title="New", overwrite=True)
    monkeypatch.undo()
    assert all((out / name).exists() for name in ("README.md", "app.py", "llmkit"))
    assert "title: New" in (out / "README.md").read_text()
    build_space("classic", out, title="Again", overwrite=True)  # the same command works again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space"]


def test_check_catches_broken_folders(tmp_path, store):
    good = build_space("rag-chat", tmp_path / "good", store=str(store))

    def broken(name, change):
        folder = tmp_path / name
        shutil.copytree(good, folder)
        change(folder)
        return validate(folder)

    assert any(
        "not one of" in p
        for p in broken(
            "colors",
            lambda f: (f / "README.md").write_text(
                (f / "README.md").read_text().replace("colorFrom: blue", "colorFrom: turquoise")
            ),
        )
    )
    assert any(
        "'sdk_version' is missing" in p
        for p in broken(
            "sdk",
            lambda f: (f / "README.md").write_text(
                "\n".join(
                    line
                    for line in (f / "README.md").read_text().splitlines()
                    if not line.startswith("sdk_version")
                )
            ),
        )
    )
    assert any("does not exist" in p for p in broken("noapp", lambda f: (f / "app.py").unlink()))
    assert any(
        "requirements.txt does not provide" in p
        for p in broken(
            "imports",
            lambda f: (f / "app.py").write_text("import numpy_financial\n" + (f / "app.py").read_text()),
        )
    )
    planted = "hf_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7"
    assert any(
        "Hugging Face token" in p
        for p in broken("token", lambda f: (f / "llmkit" / "notes.py").write_text(f"TOKEN = '{planted}'\n"))
    )


@pytest.mark.slow
def test_a_built_rag_space_serves_and_answers(tmp_path, store):
    out = build_space("rag-chat", tmp_path / "space", store=str(store))
    built = sorted(p.name for p in (out / "store").iterdir())
    result = serve_and_query(out, question="How often should I descale a kettle?")
    assert (
        "/chat" in result["endpoints"] and "[1]" in str(result["answer"]) and "kettle.md" in result["sources"]
    )
    # the app opened the store in WAL mode and left store.sqlite-wal/-shm, which `deploy` then uploaded
    assert sorted(p.name for p in (out / "store").iterdir()) == built


@pytest.mark.slow
def test_a_built_detector_space_serves_its_image_page(tmp_path, image_models):
    out = build_space("detector", tmp_path / "space", model=str(image_models["object-detection"]))
    assert (out / "model" / "examples" / "example-0.png").is_file()  # the examples travel with the model
    result = serve_and_query(out)
    assert "/detect" in result["endpoints"]
    assert result["image"] == "example-0.png" and "box(es)" in result["prediction"]  # the page ran its model


@pytest.mark.slow
def test_a_built_question_answering_space_serves_without_faiss(tmp_path, qa_model_dir):
    out = build_space("question-answering", tmp_path / "space", model=str(qa_model_dir))
    assert "faiss" not in (out / "requirements.txt").read_text()  # a QA page needs no vector index
    # What the Space installs is enough: its app must not import llmkit.rag (FAISS, sentence-transformers),
    # so here those two fail to import, from modules in the Space folder (first on the app's path).
    for module in ("faiss", "sentence_transformers"):
        (out / f"{module}.py").write_text("raise ImportError('not installed on this Space')\n")
    result = serve_and_query(out)
    assert "/answer" in result["endpoints"] and "“no answer”" in result["answer"]  # the page read the probe


def _deploy(args, hub, tmp_path, token="hf_testtoken0000000000000000000000000"):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "0",
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": token,
        "HF_HOME": str(tmp_path / "hf-home"),
        "MY_API_KEY": "sk-secret-value-for-the-space-123456",
    }
    return subprocess.run(
        [sys.executable, "-m", "llmkit.cli", "space", "deploy", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.slow
def test_deploy_creates_the_space_and_commits_the_files(tmp_path, store):
    folder = build_space("rag-chat", tmp_path / "space", store=str(store))
    (folder / "llmkit" / "__pycache__").mkdir()  # left by running app.py in the folder by hand
    (folder / "llmkit" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"bytecode")
    hub = FakeHub()
    try:
        proc = _deploy(
            [str(folder), "--repo-id", "tester/docs-chat", "--secret", "MY_API_KEY"], hub, tmp_path
        )
    finally:
        hub.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "/spaces/tester/docs-chat" in proc.stdout
    create = next(r for r in hub.requests if r["path"] == "/api/repos/create")
    body = json.loads(create["body"])
    assert body["type"] == "space" and body["sdk"] == "gradio" and body["name"] == "docs-chat"
    commit = next(r for r in hub.requests if "/commit/" in r["path"])
    committed = [
        json.loads(line)["value"]["path"] for line in commit["body"].splitlines() if b'"file"' in line
    ]
    assert {"app.py", "README.md", "requirements.txt", "store/store.sqlite", "llmkit/rag/store.py"} <= set(
        committed
    )
    assert not [path for path in committed if "__pycache__" in path]
    secret = next(r for r in hub.requests if r["path"].endswith("/secrets"))
    assert json.loads(secret["body"]) == {
        "key": "MY_API_KEY",
        "value": "sk-secret-value-for-the-space-123456",
    }
    bearer = "Bearer hf_testtoken0000000000000000000000000"
    assert create["auth"] == commit["auth"] == secret["auth"] == bearer
    # the token goes to the configured Hub only, as itself
    assert all(r["auth"] in (None, bearer) for r in hub.requests)
    assert "hf_testtoken" not in proc.stdout + proc.stderr and not list((tmp_path / "hf-home").rglob("token"))


@pytest.mark.slow
def test_deploy_errors_leave_the_folder_intact(tmp_path, store):
    folder = build_space("rag-chat", tmp_path / "space", store=str(store))
    before = sorted(p.name for p in folder.rglob("*"))
    hub = FakeHub(fail_commits=True)
    try:
        failed = _deploy([str(folder), "--repo-id", "tester/x"], hub, tmp_path)
        bad_id = _deploy([str(folder), "--repo-id", "not a repo"], hub, tmp_path)
        dry = _deploy([str(folder), "--repo-id", "tester/x", "--dry-run"], hub, tmp_path)
    finally:
        hub.close()
    assert (
        failed.returncode == 2 and "refused the upload" in failed.stderr and "Traceback" not in failed.stderr
    )
    assert "hf_testtoken" not in failed.stderr
    assert bad_id.returncode == 2 and "USER/NAME" in bad_id.stderr
    assert dry.returncode == 0 and "app.py" in dry.stdout and "would create Space tester/x" in dry.stdout
    assert sorted(p.name for p in folder.rglob("*")) == before
