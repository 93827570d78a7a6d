"""What a Space folder holds is what runs on the Hub: llmkit whole (also when built from a checkout), checked
without the local install's help, and deployed without the write-ahead log an app run by hand leaves."""

import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from llmkit.errors import UserError
from llmkit.spaces import build_space, deploy_space, serve_and_query

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


def _leave_write_ahead_log(db) -> None:
    """Write rows as the app does (WAL mode) and stop without closing, as a killed or Ctrl-C'd app does."""
    code = textwrap.dedent(f"""
        import os, sqlite3
        db = sqlite3.connect({str(db)!r})
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS uploads (name TEXT)")
        db.execute("INSERT INTO uploads VALUES ('added-in-the-app.md')")
        db.commit()
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_deploy_folds_back_the_write_ahead_log_an_app_run_by_hand_left(tmp_path, capsys):
    out = build_space("classic", tmp_path / "space")
    (out / "store").mkdir()
    db = out / "store" / "store.sqlite"
    _leave_write_ahead_log(db)
    assert {p.name for p in (out / "store").iterdir()} == {
        "store.sqlite",
        "store.sqlite-wal",
        "store.sqlite-shm",
    }

    deploy_space(out, "tester/space", dry_run=True)
    listed = capsys.readouterr().out
    assert "store/store.sqlite\n" in listed and "-wal" not in listed and "-shm" not in listed
    assert [p.name for p in (out / "store").iterdir()] == ["store.sqlite"]
    # one self-contained file that holds the row the app wrote
    ro = sqlite3.connect(f"{db.as_uri()}?mode=ro&immutable=1", uri=True)
    assert ro.execute("SELECT name FROM uploads").fetchall() == [("added-in-the-app.md",)]
    ro.close()

    # the app still running from the folder: deploy names it instead of uploading a store in use
    running = sqlite3.connect(db)
    running.execute("PRAGMA journal_mode=WAL")
    running.execute("SELECT COUNT(*) FROM uploads").fetchall()
    try:
        with pytest.raises(UserError, match="store/store.sqlite is in use.*stop the app running from"):
            deploy_space(out, "tester/space", dry_run=True)
    finally:
        running.close()
    assert os.listdir(out / "store") == ["store.sqlite"]


def test_the_classic_space_takes_only_the_recipes_folders_its_app_serves(tmp_path):
    runs = tmp_path / "runs"  # what users pass: every run they made, the classic ones among them
    for name in ("cnn", "gan", "gpt2-tiny", "finetune"):
        (runs / name).mkdir(parents=True)
        (runs / name / "config.json").write_text("{}")
        (runs / name / "model.safetensors").write_bytes(b"\0" * 1024)
    out = build_space("classic", tmp_path / "space", model=str(runs))
    assert sorted(p.name for p in (out / "model").iterdir()) == ["cnn", "gan"]
    assert (out / "model" / "gan" / "model.safetensors").is_file()
    # one recipe's folder, not the folder holding them: the app would serve nothing of it
    with pytest.raises(UserError, match="holds none of cnn/, gan/, vae/, ddpm/, char-lstm/.*e.g. runs"):
        build_space("classic", tmp_path / "other", model=str(runs / "cnn"))
    assert not (tmp_path / "other").exists()


def test_bytecode_from_running_the_app_is_neither_left_by_check_nor_uploaded(tmp_path, monkeypatch, capsys):
    import fnmatch

    from llmkit.spaces.scan import NOT_UPLOADED

    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # as on a user's machine
    space = tmp_path / "check"
    space.mkdir()
    (space / "helper.py").write_text("X = 1\n")
    (space / "app.py").write_text("import helper\n")  # imports a module of the folder, then exits
    with pytest.raises(UserError, match="exited with status 0"):
        serve_and_query(space, timeout=60)
    assert not list(space.rglob("__pycache__"))

    out = build_space("classic", tmp_path / "space")
    subprocess.run(  # `python app.py` by hand compiles the Space's llmkit in place
        [sys.executable, "-c", "import llmkit.spaces.templates"], cwd=out, check=True, timeout=120
    )
    cached = [p.relative_to(out).as_posix() for p in out.rglob("*.pyc")]
    assert cached
    deploy_space(out, "tester/space", dry_run=True)
    listed = capsys.readouterr().out
    assert (
        "__pycache__" not in listed
        and ".pyc" not in listed
        and "llmkit/spaces/templates/__init__.py" in listed
    )
    # upload_folder is told to leave out the same files
    assert all(any(fnmatch.fnmatchcase(f, pattern) for pattern in NOT_UPLOADED) for f in cached)


def test_check_and_deploy_refuse_a_folder_that_is_no_space_before_reading_it(tmp_path, monkeypatch):
    from llmkit.spaces import validate

    build_space("classic", tmp_path / "spaces" / "demo")
    (tmp_path / "spaces" / "notes").mkdir()
    # a folder that merely holds Spaces (or a home folder, a venv): each file below would be scanned and sized
    reads = []
    monkeypatch.setattr("llmkit.spaces.check.secret_findings", lambda *a, **k: reads.append(a) or [])
    for run in (validate, lambda f: deploy_space(f, "tester/x", dry_run=True)):
        with pytest.raises(
            UserError, match="not a Space folder .*holds the Space\\(s\\) demo: pass one of them"
        ):
            run(tmp_path / "spaces")
    with pytest.raises(UserError, match="not a Space folder \\(no README.md or app.py\\); build one"):
        validate(tmp_path / "spaces" / "notes")
    assert reads == []


def test_a_file_gone_between_listing_and_reading_is_no_problem(tmp_path, monkeypatch):
    from llmkit.spaces import check, validate

    out = build_space("classic", tmp_path / "space")
    listed = check.upload_files(out)
    # as SQLite deletes store.sqlite-shm when a store's last connection closes while check reads the folder
    monkeypatch.setattr(
        check, "upload_files", lambda folder: [*listed, folder / "store" / "store.sqlite-shm"]
    )
    monkeypatch.setattr("llmkit.spaces.scan.upload_files", check.upload_files)
    assert validate(out) == []


def test_a_store_indexed_with_a_local_embedding_model_is_refused(tmp_path):
    import json

    from llmkit.spaces import validate

    store = tmp_path / "store"
    store.mkdir()
    local = tmp_path / "my-minilm"  # `llmkit rag index docs --embedding_model ./my-minilm`
    local.mkdir()
    for name in (str(local), "./my-minilm", "~/models/minilm"):
        (store / "manifest.json").write_text(json.dumps({"embedding_model": name}))
        with pytest.raises(
            UserError, match="local folder .*cannot load on the Hub.*--embedding_model ORG/NAME"
        ):
            build_space("rag-chat", tmp_path / "space", store=str(store))
    assert not (tmp_path / "space").exists()
    # a Hub name builds; the same Space edited to name a local folder fails check
    (store / "manifest.json").write_text(
        json.dumps({"embedding_model": "sentence-transformers/all-MiniLM-L6-v2"})
    )
    out = build_space("rag-chat", tmp_path / "space", store=str(store))
    (out / "store" / "manifest.json").write_text(json.dumps({"embedding_model": str(local)}))
    assert any("store/manifest.json names the local embedding model" in p for p in validate(out))


def test_a_lora_adapter_folder_is_named_with_the_way_to_a_whole_model(tmp_path):
    run = tmp_path / "ft-gpt2-lora"  # what finetune-gpt2 --use_lora leaves: the adapter, no config.json
    run.mkdir()
    (run / "adapter_config.json").write_text('{"base_model_name_or_path": "runs/gpt2-tiny"}')
    with pytest.raises(
        UserError, match="holds a LoRA adapter, not a whole model.*re-run it with --merge_lora"
    ):
        build_space("text-generation", tmp_path / "space", model=str(run))
    (run / "merged").mkdir()
    (run / "merged" / "config.json").write_text("{}")
    with pytest.raises(UserError, match=f"LoRA adapter.*pass {run / 'merged'}"):
        build_space("text-generation", tmp_path / "space", model=str(run))


def test_each_template_card_shows_the_command_that_builds_and_deploys_it():
    from llmkit.spaces import TEMPLATES

    for name, t in TEMPLATES.items():
        line = next(x for x in (t.folder / "README.md").read_text().splitlines() if "Built with llmkit" in x)
        assert f"llmkit space build {name} --out DIR" in line and "--repo_id USER/NAME" in line, name
        for need in t.needs if name != "classic" else ():  # the flags build refuses to go without
            assert f"--{need} " in line, (name, need)


def test_a_lora_classifier_space_requires_peft(tmp_path):
    from importlib.metadata import version

    from llmkit.spaces import validate

    run = tmp_path / "ft-bert-lora"  # finetune-bert --use_lora: the base weights and config, and the adapter
    run.mkdir()
    (run / "config.json").write_text('{"architectures": ["BertForSequenceClassification"]}')
    (run / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    out = build_space("classifier", tmp_path / "space", model=str(run))
    assert f"peft=={version('peft')}" in (out / "requirements.txt").read_text().splitlines()
    assert validate(out) == []
    # without peft on the Hub, pipeline() ignores the adapter and serves the untrained base: check says so
    lines = (out / "requirements.txt").read_text().splitlines()
    (out / "requirements.txt").write_text("\n".join(x for x in lines if not x.startswith("peft")) + "\n")
    assert any("model/adapter_config.json: a LoRA adapter" in p and "add peft" in p for p in validate(out))
    # a whole model needs no peft
    (run / "adapter_config.json").unlink()
    plain = build_space("classifier", tmp_path / "plain", model=str(run))
    assert "peft" not in (plain / "requirements.txt").read_text()
