"""Validate a Space folder before uploading it, then prove it serves by starting it and querying it."""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from llmkit.errors import UserError
from llmkit.secrets import redact
from llmkit.spaces.build import LFS_MIN_BYTES, split_front_matter, title_problem
from llmkit.spaces.contents import local_embedding_model, lora_adapters
from llmkit.spaces.scan import secret_findings, upload_files

COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
REQUIRED = ("title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "app_file")
MAX_REPO_BYTES = 50 * 2**30  # a Space repository's storage
# pip names whose import name differs.
IMPORT_NAMES = {
    "scikit-learn": "sklearn",
    "faiss-cpu": "faiss",
    "sentence-transformers": "sentence_transformers",
    "pyyaml": "yaml",
    "huggingface_hub": "huggingface_hub",
    "rouge-score": "rouge_score",
    "pillow": "PIL",
}


def validate(folder: str | Path) -> list[str]:
    """Every problem found in the folder (an empty list means it is fine)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; build one with `llmkit space build`.")
    not_a_space(folder)
    problems: list[str] = []
    readme = folder / "README.md"
    meta: dict = {}
    if not readme.is_file():
        problems.append("README.md is missing (it carries the Space's front matter).")
    else:
        try:
            meta, _ = split_front_matter(readme.read_text())
        except UserError as err:
            problems.append(str(err))
    problems += [f"front matter: '{k}' is missing." for k in REQUIRED if meta and k not in meta]
    if meta:
        if "title" in meta and title_problem(meta["title"]):
            problems.append(
                f"front matter: title {title_problem(meta['title'])}; give the Space a one-line title."
            )
        if meta.get("sdk") not in (None, "gradio"):
            problems.append(f"front matter: sdk is {meta['sdk']!r}; llmkit Spaces are 'gradio'.")
        if "sdk_version" in meta and not re.fullmatch(r"\d+\.\d+(\.\d+)?", str(meta["sdk_version"])):
            problems.append(
                f"front matter: sdk_version {meta['sdk_version']!r} is not a version like 6.31.0."
            )
        problems += [
            f"front matter: {k} {meta[k]!r} is not one of {sorted(COLORS)}."
            for k in ("colorFrom", "colorTo")
            if k in meta and meta[k] not in COLORS
        ]
        if len(str(meta.get("short_description", ""))) > 60:
            problems.append("front matter: short_description is longer than the Hub's 60 characters.")
        if "app_file" in meta and not (folder / str(meta["app_file"])).is_file():
            problems.append(f"the app file {meta['app_file']} named in the front matter does not exist.")
    app = folder / str(meta.get("app_file", "app.py"))
    if app.is_file():
        problems += _unresolved_imports(app, folder)
    problems += [
        f"{manifest.relative_to(folder)} names the local embedding model {local_embedding_model(manifest.parent)}, "
        "which the Space cannot load on the Hub; build it from a store indexed with a Hub model "
        "(`llmkit rag index --embedding_model ORG/NAME`)."
        for manifest in sorted(folder.glob("*/manifest.json"))
        if local_embedding_model(manifest.parent)
    ]
    if "peft" not in _requirements(folder):
        problems += [
            f"{adapter.relative_to(folder)}: a LoRA adapter, which transformers applies only with peft (without it "
            "the Space serves the bare base model); add peft to requirements.txt, or build the Space again."
            for adapter in lora_adapters(folder)
        ]
    problems += _size_problems(folder)
    problems += secret_findings(folder)
    return [redact(p) for p in problems]  # a token in a file name must not be printed either


def not_a_space(folder: Path) -> None:
    """Refuse a folder with neither README.md nor app.py before reading it: `check .` or `check ~` scanned and sized
    every file below (a venv, a home folder) to report pages of problems about files no Space holds."""
    if (folder / "README.md").is_file() or (folder / "app.py").is_file():
        return
    spaces = sorted(
        p.name for p in folder.iterdir() if (p / "app.py").is_file() and (p / "README.md").is_file()
    )
    fix = (
        f"it holds the Space(s) {', '.join(spaces)}: pass one of them"
        if spaces
        else "build one with `llmkit space build`"
    )
    raise UserError(f"{folder} is not a Space folder (no README.md or app.py); {fix}.")


def _requirements(folder: Path) -> set[str]:
    req = folder / "requirements.txt"
    names = set()
    for line in req.read_text().splitlines() if req.is_file() else []:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name = re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower()
            names.add(IMPORT_NAMES.get(name, name.replace("-", "_")))
    return names


def _unresolved_imports(app: Path, folder: Path) -> list[str]:
    """Top-level imports of the app that neither the standard library, the folder, nor requirements.txt provide."""
    try:
        tree = ast.parse(app.read_text())
    except SyntaxError as err:
        return [f"{app.name} does not parse: {err}"]
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {
        n.module.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module and not n.level
    }
    local = {p.stem for p in folder.iterdir()}
    # `spaces` exists on every Space
    provided = _requirements(folder) | set(sys.stdlib_module_names) | local | {"spaces"}
    return [
        f"{app.name} imports {m!r}, which requirements.txt does not provide."
        for m in sorted(modules - provided)
    ]


def _size_problems(folder: Path) -> list[str]:
    attributes = folder / ".gitattributes"
    patterns = (
        [line.split()[0] for line in attributes.read_text().splitlines() if "filter=lfs" in line]
        if attributes.is_file()
        else []
    )
    sizes = {}
    for p in upload_files(folder):
        # a file gone since listed is not uploaded either: SQLite deletes a -wal/-shm as its last connection closes
        with contextlib.suppress(FileNotFoundError):
            sizes[p] = p.stat().st_size
    problems = [
        f"{p.relative_to(folder)} is {size / 2**20:.0f} MB but not tracked by Git LFS (.gitattributes)."
        for p, size in sizes.items()
        if size >= LFS_MIN_BYTES
        and not any(
            fnmatch.fnmatch(p.name, pat) or fnmatch.fnmatch(str(p.relative_to(folder)), pat)
            for pat in patterns
        )
    ]
    total = sum(sizes.values())
    if total > MAX_REPO_BYTES:
        problems.append(
            f"the folder holds {total / 2**30:.1f} GB, over a Space's {MAX_REPO_BYTES // 2**30} GB."
        )
    return problems


# Runs app.py as `python app.py` does, but with only the Space folder's llmkit: an editable install's import hook
# (`pip install -e .`) would supply the modules the folder lacks, so a Space that fails on the Hub passed here.
RUN_ISOLATED = (
    "import runpy, sys; "
    "sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable___llmkit_')]; "
    "sys.argv = ['app.py']; "
    "runpy.run_path('app.py', run_name='__main__')"
)


# The image page's endpoints (llmkit/ui/vision.py), each with the inputs it takes after the image.
IMAGE_ENDPOINTS = {"/classify_image": (), "/detect": (0.3,), "/segment": ()}


# What `space check` asks a question-answering page: the model must read it, whatever it answers.
QA_PROBE = ("The museum opens at nine in the morning and closes at five.", "When does the museum open?")


def _predict_image(client, api: str, image: Path) -> str:
    """Run one example image through the page's endpoint; say what came back (top label, boxes or masks)."""
    from gradio_client import handle_file

    out = client.predict(handle_file(str(image)), *IMAGE_ENDPOINTS[api], api_name=api)
    if api == "/classify_image":
        return f"top label {out.get('label')!r}"
    found = len((out or {}).get("annotations") or [])
    return f"{found} box(es) scoring 0.3 or more" if api == "/detect" else f"{found} class mask(s)"


def serve_and_query(folder: str | Path, timeout: float = 240.0, question: str | None = None) -> dict:
    """Start the app from the folder in a fresh Python process and query it with gradio_client."""
    from gradio_client import Client

    folder = Path(folder).resolve()
    if not (folder / "app.py").is_file():
        raise UserError(f"{folder} has no app.py; build a Space with `llmkit space build`.")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "PYTHONPATH": str(folder),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONDONTWRITEBYTECODE": "1",  # check leaves the folder as built: no __pycache__ beside its llmkit
    }
    # The app's output stays in memory (no log file to forget), and is shown redacted: it runs with our environment.
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_ISOLATED],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    output: deque[str] = deque(maxlen=40)
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()

    def tail() -> str:
        return redact("".join(output))[-2000:]

    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                reader.join(5)  # the app's last lines say why
                raise UserError(f"the app exited with status {proc.returncode} before serving:\n{tail()}")
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:  # not listening yet
                time.sleep(1)
        else:
            raise UserError(f"the app did not serve within {timeout:.0f} s:\n{tail()}")
        endpoints = sorted(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
        result = {"url": f"http://127.0.0.1:{port}/", "endpoints": endpoints}
        image_api = next((e for e in IMAGE_ENDPOINTS if e in endpoints), None)
        examples = sorted((folder / "model" / "examples").glob("*.png"))
        if image_api and examples:  # the page must run its model, not just serve
            result["image"], result["prediction"] = (
                examples[0].name,
                _predict_image(client, image_api, examples[0]),
            )
        if "/answer" in endpoints:  # the question-answering page reads a context of its own
            _, result["answer"] = client.predict(*QA_PROBE, 0, api_name="/answer")
        if question and "/chat" in endpoints:
            history, sources, _ = client.predict(question, [], 3, "hybrid", api_name="/chat")
            content = history[-1][
                "content"
            ]  # Gradio 6 sends a message as a list of {"type": "text", "text": ...} blocks
            if isinstance(content, list):
                content = "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
            result["answer"], result["sources"] = content, sources
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        restore_databases(folder)


def restore_databases(folder: Path) -> None:
    """Fold each SQLite database's `-wal`/`-shm` files back into the one file `build` wrote.

    The app opens its store in WAL mode, so running it from the folder (`check`, or `python app.py` by hand)
    leaves them beside it, and `deploy` would upload them. They cannot simply be left out: rows the app wrote
    (an upload in the chat) may live in the log alone, and a database copied half-checkpointed is damaged.
    """
    for db in folder.rglob("*.sqlite"):
        if any(db.with_name(db.name + end).exists() for end in ("-wal", "-shm")):
            con = sqlite3.connect(db, timeout=5)
            try:
                # checkpoints the log into the file, then deletes it; it needs the database to itself
                con.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.OperationalError as err:
                raise UserError(
                    f"{db.relative_to(folder)} is in use ({err}): stop the app running from {folder}, "
                    "then try again."
                ) from None
            except sqlite3.DatabaseError as err:
                raise UserError(
                    f"{db.relative_to(folder)} is damaged ({err}); build the Space again with `llmkit space build`."
                ) from None
            finally:
                con.close()
