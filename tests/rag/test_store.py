"""Loading, chunking and the store's writes: incremental, atomic, and tolerant of bad files."""

import faiss
import pytest

from llmkit.rag import Document, Store, chunk_document, load_paths
from llmkit.rag import documents as documents_module
from llmkit.rag.documents import html_to_text


def _write_pdf(path, text):
    """A minimal one-page PDF whose page shows `text` (built by hand; no PDF writer needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(
        b"%010d 00000 n \n" % o for o in offsets
    )
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


def test_loaders_read_each_format_and_skip_bad_files(tmp_path, monkeypatch, capfd):
    (tmp_path / "notes.txt").write_text("Plain notes about tea.")
    (tmp_path / "page.html").write_text(
        "<html><head><title>Kettles</title><style>p{color:red}</style></head>"
        "<body><h1>Kettles</h1><p>Boil water &amp; wait.</p><script>alert(1)</script></body></html>"
    )
    _write_pdf(tmp_path / "paper.pdf", "Steeping green tea at 80 degrees")
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (tmp_path / "big.md").write_text("x" * 2000)
    (tmp_path / "image.png").write_bytes(b"\x89PNG")  # not a document type: ignored in folders
    (tmp_path / "utf16.txt").write_bytes("Tea notes".encode("utf-16"))  # was called a "binary file"
    (tmp_path / "utf16le.txt").write_bytes("Tea notes without a byte-order mark".encode("utf-16-le"))
    for hidden in (".ipynb_checkpoints/notes-checkpoint.txt", ".venv/lib/LICENSE.txt", ".draft.md"):
        (tmp_path / hidden).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / hidden).write_text("A stale copy, cited as if it were the notes.")  # left out, silently
    monkeypatch.setattr(documents_module, "MAX_FILE_BYTES", 1000)
    with pytest.warns(UserWarning) as caught:
        docs = {d.id.split("/", 1)[1]: d for d in load_paths([tmp_path], root=tmp_path.parent)}
    skipped = " ".join(str(w.message) for w in caught)
    for name in ("empty.md", "binary.txt", "latin1.txt", "broken.pdf", "big.md"):
        assert name in skipped, name
    assert "utf16.txt: UTF-16 text, not UTF-8; convert it, e.g. iconv -f utf-16" in skipped
    # the PDF is named once, with pypdf's reason; pypdf's own log line ("EOF marker not found") is not printed
    assert (
        "broken.pdf: unreadable PDF (PdfStreamError: " in skipped
        and "EOF marker" not in capfd.readouterr().err
    )
    assert "utf16le.txt: UTF-16 text" in skipped and "binary.txt: binary file" in skipped
    assert (
        "latin1.txt: not UTF-8 text (byte 0xe9 at offset 3; Latin-1" in skipped
        and "iconv -f latin1" in skipped
    )
    assert set(docs) == {"notes.txt", "page.html", "paper.pdf"}
    assert docs["page.html"].metadata["title"] == "Kettles"
    assert "alert" not in docs["page.html"].text and "color" not in docs["page.html"].text
    assert "Boil water & wait." in docs["page.html"].text
    assert "green tea" in docs["paper.pdf"].text and docs["paper.pdf"].metadata["pages"] == [(1, 0)]
    picked = load_paths([tmp_path], include=["*.txt"], exclude=["binary*", "latin1*"], root=tmp_path.parent)
    assert picked[0].id == f"{tmp_path.name}/notes.txt"
    assert load_paths([tmp_path / "notes.txt"], root=tmp_path)[0].id == "notes.txt"


def test_html_text_keeps_headings():
    text, title = html_to_text("<title> T </title><h2>Setup</h2><p>Run   it.</p>")
    assert title == "T" and text == "## Setup\n\nRun it."


def test_an_icons_title_is_not_the_pages():
    page = (
        "<html><head><title>Install guide</title></head><body><a href=x><svg><title>GitHub</title></svg></a>"
        "<p>Run pip install.</p><svg><title>Copy to clipboard</title></svg></body></html>"
    )
    assert html_to_text(page) == (
        "Run pip install.",
        "Install guide",
    )  # "Install guideGitHubCopy to clipboard"


def test_table_cells_and_definition_lists_keep_their_words_apart():
    page = "<table><tr><th>Option</th><th>Default</th></tr><tr><td>timeout</td><td>30</td></tr></table>"
    page += "<dl><dt>retries</dt><dd>How many times.</dd></dl>"
    assert (
        html_to_text(page)[0] == "Option Default\n\ntimeout 30\n\nretries\n\nHow many times."
    )  # "timeout30"


def test_preformatted_code_keeps_its_indentation():
    page = "<p>Loop like this:</p><pre><b>for</b> x <b>in</b> y:\n    <b>if</b> x:\n        go()\n</pre><p>Done.</p>"
    code = "for x in y:\n    if x:\n        go()"  # every line was stripped: "for x in y:\nif x:\ngo()"
    assert html_to_text(page)[0] == f"Loop like this:\n\n{code}\n\nDone."


def test_chunks_fit_the_embedding_model_and_keep_positions(embedder):
    body = "\n\n".join(
        f"## Part {i}\n\n" + " ".join(f"Sentence {i}.{j} talks about topic {i}." for j in range(12))
        for i in range(6)
    )
    doc = Document("guide.md", body + "\n\n" + "unbroken " * 400, {"source": "guide.md"})
    chunks = chunk_document(doc, embedder.tokenizer, max_tokens=64, overlap=16)
    assert len(chunks) > 10
    for c in chunks:
        assert len(embedder.tokenizer(c.text, add_special_tokens=False)["input_ids"]) <= 64
        assert doc.text[c.start : c.end] == c.text
    assert chunks[0].start == 0 and chunks[-1].end >= len(doc.text.rstrip())  # the whole text is covered
    for a, b in zip(chunks, chunks[1:]):  # ordered, and either overlapping or separated by whitespace only
        assert a.start < b.start and not doc.text[a.end : b.start].strip()
    assert sum(b.start < a.end for a, b in zip(chunks, chunks[1:])) > 5  # most neighbours share an overlap
    assert chunks[3].metadata["heading"].startswith("Part")


def test_no_chunk_lies_inside_the_one_before(embedder):
    """A heading, a short paragraph, then a long one: the short paragraph was a chunk of its own as well as the
    end of the first, and the two were retrieved (and shown) as two sources of one text."""
    text = "# Tools\n\nThis module holds small tools.\n\n" + " ".join(
        f"Item {i} does thing {i}." for i in range(26)
    )
    chunks = chunk_document(Document("t.md", text, {"source": "t.md"}), embedder.tokenizer, 160, 32)
    assert len(chunks) == 2 and chunks[0].text.startswith("# Tools") and chunks[1].text.startswith("Item 0")
    for a, b in zip(chunks, chunks[1:]):
        assert b.end > a.end


def test_yaml_front_matter_is_no_heading(embedder):
    """Its closing "---" underlined its last line as a setext heading: every chunk was "layout: page"'s."""
    steps = "\n\n".join(f"Step {i} of the install runs command {i} and waits for it." for i in range(30))
    text = f"---\ntitle: Install guide\nlayout: page\n---\n\n{steps}"
    chunks = chunk_document(Document("i.md", text, {"title": "i"}), embedder.tokenizer, 64, 16)
    assert len(chunks) > 5 and not [c.metadata["heading"] for c in chunks if "heading" in c.metadata]


def test_a_long_paragraph_is_chunked_a_piece_at_a_time(embedder, monkeypatch):
    """A 5 MB paragraph (a file without blank lines) took 1.1 GB to chunk: it was tokenized whole, twice."""
    from llmkit import pieces

    words = "alpha beta. Gamma delta epsilon, zeta eta theta iota kappa lambda".split()
    doc = Document(
        "long.txt", " ".join(words[i * 5 % len(words)] for i in range(3000)), {"source": "long.txt"}
    )
    whole = [(c.start, c.end, c.text) for c in chunk_document(doc, embedder.tokenizer, 64, 16)]
    monkeypatch.setattr(pieces, "PIECE_CHARS", 500)
    tokenizer = embedder.tokenizer
    call, lengths = type(tokenizer).__call__, []

    def spy(self, text, **kwargs):
        lengths.append(len(text))
        return call(self, text, **kwargs)

    monkeypatch.setattr(type(tokenizer), "__call__", spy)
    assert [(c.start, c.end, c.text) for c in chunk_document(doc, tokenizer, 64, 16)] == whole
    assert max(lengths) <= 500


def test_incremental_reindex(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in {
        "a.md": "Apples are red or green.",
        "b.md": "Bananas are yellow.",
        "c.md": "Cherries are dark red.",
    }.items():
        (folder / name).write_text(text)
    store = Store(tmp_path / "store", embedder=embedder)
    first = store.add_documents(load_paths([folder], root=tmp_path), prune_prefixes={"docs/"})
    assert first["documents_added"] == 3 and first["chunks_embedded"] == 3

    again = store.add_documents(load_paths([folder], root=tmp_path), prune_prefixes={"docs/"})
    assert again["chunks_embedded"] == 0 and again["documents_unchanged"] == 3

    (folder / "a.md").write_text("Apples are crisp; some are sour.")
    (folder / "b.md").unlink()
    (folder / "d.md").write_text("Dates are sweet.")
    changed = store.add_documents(load_paths([folder], root=tmp_path), prune_prefixes={"docs/"})
    assert (
        changed["documents_added"],
        changed["documents_updated"],
        changed["documents_removed"],
        changed["documents_unchanged"],
    ) == (1, 1, 1, 1)
    assert changed["chunks_embedded"] == 2
    assert store.document_ids() == ["docs/a.md", "docs/c.md", "docs/d.md"]
    assert store.index.ntotal == len(store) == 3
    store.add_documents(
        [Document("notes/x.md", "Elsewhere.", {"source": "notes/x.md"})], prune_prefixes={"notes/"}
    )
    assert len(store.document_ids()) == 4  # indexing another folder prunes only inside that folder
    assert store.delete_documents(["docs/a.md", "nope"]) == 1 and len(store) == store.index.ntotal == 3


def test_interrupted_saves_leave_a_readable_store(tmp_path, embedder, monkeypatch):
    path = tmp_path / "store"
    store = Store(path, embedder=embedder)
    store.add_documents([Document("one", "The first document is about owls.", {"source": "one"})])

    # A failure inside the database transaction: nothing of the new batch lands.
    with pytest.raises(TypeError):
        store.add_documents([Document("two", "Unsaveable.", {"source": "two", "bad": object()})])
    assert Store(path, embedder=embedder).document_ids() == ["one"]

    # A crash after the database commit, while the index is written: the index is rebuilt on open.
    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", crash)
    with pytest.raises(OSError):
        store.add_documents([Document("three", "The third document is about foxes.", {"source": "three"})])
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="rebuilding"):
        reopened = Store(path, embedder=embedder)
    assert reopened.document_ids() == ["one", "three"] and reopened.index.ntotal == 2


def test_chunks_are_embedded_as_read_in_place_and_older_stores_keep_bare_text(tmp_path, embedder):
    import json

    import numpy as np

    page = Document(
        "api/adamw.md", "eps (float, optional): term added to the denominator.", {"title": "AdamW"}
    )
    store = Store(tmp_path / "store", embedder=embedder)
    store.add_documents([page])
    assert store.config["chunk_context"] is True
    _, vectors = store.vectors()
    placed, bare = embedder.encode([f"AdamW: {page.text}", page.text])
    assert np.allclose(vectors[0], placed, atol=1e-5) and not np.allclose(vectors[0], bare, atol=1e-3)

    # a store made before: its manifest has no chunk_context, so new chunks match the old ones (bare text)
    manifest = tmp_path / "old" / "manifest.json"
    Store(tmp_path / "old", embedder=embedder)
    config = json.loads(manifest.read_text())
    del config["chunk_context"]
    manifest.write_text(json.dumps(config))
    old = Store(tmp_path / "old", embedder=embedder)
    old.add_documents([page])
    assert np.allclose(old.vectors()[1][0], bare, atol=1e-5)
    assert "chunk_context" not in json.loads(manifest.read_text())


def test_indexing_shows_the_chunks_embedded_while_one_long_document_is_read(tmp_path, embedder, capsys):
    # the bar counts documents, so one long document (a book) sat at 0/1 for minutes with no sign of life
    long = Document("book.md", "Kettles boil water for tea in the morning. " * 600, {"source": "book.md"})
    sizes = []
    vectors = embedder.encode([f"text {i}" for i in range(70)], on_batch=sizes.append)
    assert vectors.shape == (70, embedder.dim) and sum(sizes) == 70 and len(sizes) == 3
    Store(tmp_path / "s", embedder=embedder).add_documents([long], progress=True)
    shown = capsys.readouterr().err.replace("\r", "\n").splitlines()
    counts = [
        int(line.split(", ")[-1].split()[0].replace(",", "")) for line in shown if "chunks embedded" in line
    ]
    assert len(set(counts)) > 1 and counts[-1] == len(Store(tmp_path / "s", embedder=embedder)), shown[-3:]
