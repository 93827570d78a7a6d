"""`space check` scans every file a Space would upload for secrets: big files, binaries, SQLite stores, archives."""

import base64
import bz2
import gzip
import io
import lzma
import shutil
import sqlite3
import warnings

import numpy as np
import pytest

from llmkit.cli import main
from llmkit.rag import Document, Embedder, Store
from llmkit.spaces import build_space, validate
from llmkit.spaces.scan import CHUNK, SQLITE_MAGIC, file_findings, stream_kinds

# Built at run time so that no file of this repository holds a token-shaped string.
TOKEN = "hf_" + "Zq8Lw2Rt6Yp4Nx9Kc3Vb7Md1Hs5Jf0Gu2A"
KEY = "sk-" + "proj4Hd9Ls2Kq7Wm3Xn8Bv5Cz1"


@pytest.fixture(scope="module")
def space(tmp_path_factory, store):
    return build_space("rag-chat", tmp_path_factory.mktemp("scan") / "space", store=str(store))


@pytest.fixture
def folder(tmp_path, space):
    """A fresh copy of a valid Space to plant secrets in."""
    return shutil.copytree(space, tmp_path / "space")


def _check_fails_naming(folder, name, capsys) -> str:
    """`llmkit space check --no-serve` exits 2 naming the file, and never prints a secret."""
    with pytest.raises(SystemExit) as exit_:
        main(["space", "check", str(folder), "--no-serve"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert name in err and TOKEN not in err and KEY not in err
    return err


def test_the_valid_space_has_no_findings(space):
    assert validate(space) == []


def test_a_token_in_a_file_over_5_mb_is_found(folder, capsys):
    big = folder / "model" / "notes.txt"
    big.parent.mkdir()
    big.write_bytes(b"filler text " * (6 * 2**20 // 12) + f"\nHF_TOKEN={TOKEN}\n".encode())
    assert big.stat().st_size > 6 * 2**20
    err = _check_fails_naming(folder, "model/notes.txt", capsys)
    assert "Hugging Face token" in err


@pytest.mark.parametrize("cut", [1, 3, 20, len(TOKEN) - 1])
def test_a_token_across_a_chunk_boundary_is_found(folder, cut, capsys):
    data = bytearray(np.random.default_rng(cut).integers(0, 256, 6 * 2**20, dtype=np.uint8).tobytes())
    at = CHUNK - cut  # the first `cut` characters end one chunk, the rest start the next
    data[at - 1 : at + len(TOKEN) + 1] = b" " + TOKEN.encode() + b" "
    (folder / "weights.bin").write_bytes(bytes(data))
    assert stream_kinds(io.BytesIO(bytes(data))) == {"Hugging Face token"}
    _check_fails_naming(folder, "weights.bin", capsys)


def test_a_token_in_a_bin_file_is_found(folder, capsys):
    payload = np.random.default_rng(0).standard_normal(1000).astype(np.float32).tobytes()
    (folder / "model").mkdir()
    (folder / "model" / "training_args.bin").write_bytes(
        payload[:2000] + b"\x00hub_token\x94" + KEY.encode() + b"\x94" + payload
    )
    err = _check_fails_naming(folder, "model/training_args.bin", capsys)
    assert "OpenAI-style API key" in err


def test_a_token_inside_a_store_document_is_found(folder, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = Store(folder / "store", embedder=Embedder())
    store.add_documents(
        [
            Document(
                "deploy.md",
                f"To deploy, run `hf upload` with the token {TOKEN} as the password.",
                {"source": "deploy.md"},
            )
        ]
    )
    del store
    err = _check_fails_naming(folder, "store/store.sqlite", capsys)
    assert "table 'chunks'" in err or "table 'documents'" in err or "(table " in err


def test_a_token_split_over_sqlite_overflow_pages_is_found(tmp_path):
    # A long document spills over overflow pages; its bytes are not contiguous in the file, so only
    # reading the rows through SQLite sees the whole token at every position.
    missed_by_raw_bytes = 0
    for offset in range(0, 600, 7):
        db_path = tmp_path / f"{offset}.sqlite"
        db = sqlite3.connect(db_path)
        db.execute("PRAGMA page_size = 512")
        db.execute("CREATE TABLE docs (id TEXT, text TEXT)")
        db.execute("INSERT INTO docs VALUES ('notes.md', ?)", ("a " * offset + TOKEN + " b" * 2000,))
        db.commit()
        db.close()
        assert db_path.read_bytes().startswith(SQLITE_MAGIC)
        with open(db_path, "rb") as raw:
            missed_by_raw_bytes += not stream_kinds(raw)
        assert file_findings(db_path, "notes.sqlite") == [
            "notes.sqlite (table 'docs', row 1) holds what looks like a Hugging Face token"
        ], offset
    assert missed_by_raw_bytes  # some offsets put a page boundary inside the token


def test_a_deleted_row_left_in_a_free_page_is_found(tmp_path):
    db_path = tmp_path / "old.sqlite"
    db = sqlite3.connect(db_path)
    # many SQLite builds' default: a deleted row's bytes stay in the file
    db.execute("PRAGMA secure_delete = OFF")
    db.execute("CREATE TABLE docs (id TEXT, text TEXT)")
    db.execute("INSERT INTO docs VALUES ('a', ?)", (f"token {TOKEN}",))
    db.execute("INSERT INTO docs VALUES ('b', 'harmless')")
    db.commit()
    db.execute("DELETE FROM docs WHERE id = 'a'")
    db.commit()
    db.close()
    (finding,) = file_findings(db_path, "old.sqlite")
    assert "deleted or unused pages" in finding and "VACUUM" in finding and TOKEN not in finding


def test_compressed_archives_and_file_names_are_scanned(folder):
    arrays = folder / "model" / "arrays.npz"
    arrays.parent.mkdir()
    np.savez_compressed(arrays, notes=np.frombuffer(f"key={KEY};".encode() * 10, dtype=np.uint8))
    with open(arrays, "rb") as raw:
        assert not stream_kinds(raw)  # deflated: invisible in the raw bytes
    with gzip.open(folder / "log.gz", "wb") as out:
        out.write(f"export HF_TOKEN={TOKEN}\n".encode())
    (folder / f"{TOKEN}.txt").write_text("named after the token")
    problems = validate(folder)
    assert any(p.startswith("model/arrays.npz (member notes.npy)") for p in problems)
    assert any(p.startswith("log.gz (once decompressed)") for p in problems)
    assert any("file name holds what looks like a Hugging Face token" in p for p in problems)
    assert all(KEY not in p and TOKEN not in p for p in problems)


def test_scanning_leaves_the_folder_untouched(folder):
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    assert validate(folder) == []
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before  # no -shm/-wal, no logs


@pytest.mark.parametrize(
    "name, data",
    [
        ("old-token.txt", f"HF_TOKEN={TOKEN}_old\n".encode()),  # a trailing "_" used to defeat \b
        ("glued.bin", b"\x00\x01A" + TOKEN.encode() + b"\x02"),  # a letter byte right before it
        ("accent.bin", b"\x00" + TOKEN.encode() + b"\xe9\x00"),  # a non-ASCII letter right after it
        ("glued-key.bin", b"\x00Z" + KEY.encode() + b"\x00"),
        ("notes-utf16.txt", f"token: {TOKEN}\n".encode("utf-16")),
        ("notes-utf16be.txt", f"token: {TOKEN}\n".encode("utf-16-be")),
        ("env.b64", b"ZW52=\n" + base64.b64encode(f"HF_TOKEN={TOKEN}\n".encode())),
        ("config.json", b'{"auth": "' + base64.urlsafe_b64encode(b"k=" + KEY.encode()) + b'"}'),
        ("misaligned.b64", b"blob" + base64.b64encode(b"..." + TOKEN.encode())),
    ],
)
def test_tokens_in_every_shape_are_found(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    (finding,) = file_findings(path, name)
    assert name in finding and TOKEN not in finding and KEY not in finding


def test_a_token_in_a_bz2_or_xz_file_is_found(tmp_path):
    for name, compress in (("log.bz2", bz2.compress), ("log.xz", lzma.compress)):
        (tmp_path / name).write_bytes(compress(f"export HF_TOKEN={TOKEN}\n".encode() * 3))
        assert file_findings(tmp_path / name, name) == [
            f"{name} (once decompressed) holds what looks like a Hugging Face token"
        ]


def test_ordinary_weights_text_and_stores_raise_nothing(tmp_path, store):
    """No false positives: float weights, base64-looking paths and prose, a store of ordinary documents."""
    from pydoc_data.topics import topics

    rng = np.random.default_rng(0)
    (tmp_path / "weights.bin").write_bytes(rng.standard_normal(2**20).astype(np.float32).tobytes())
    (tmp_path / "half.bin").write_bytes(rng.standard_normal(2**20).astype(np.float16).tobytes())
    (tmp_path / "ids.bin").write_bytes(rng.integers(0, 50_000, 2**19).astype(np.int64).tobytes())
    (tmp_path / "random.bin").write_bytes(rng.integers(0, 256, 4 * 2**20, dtype=np.uint8).tobytes())
    (tmp_path / "docs.txt").write_text("\n".join(topics.values()))
    (tmp_path / "docs-utf16.txt").write_bytes("\n".join(list(topics.values())[:50]).encode("utf-16"))
    (tmp_path / "paths.txt").write_text(
        "/usr/lib/python3/dist-packages/some-package/submodule/file_name.py\n"
        "task-2024-Report-final-version-draft disk-partition-management-tool\n"
        + base64.b64encode(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()).decode()
    )
    for path in tmp_path.iterdir():
        assert file_findings(path, path.name) == [], path.name
    for path in store.iterdir():  # the RAG store of ordinary documents the Space tests build
        assert file_findings(path, path.name) == [], path.name
