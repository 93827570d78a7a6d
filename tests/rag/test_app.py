"""The RAG chat app over HTTP (gradio_client) and in a real browser (Debian's Chromium via Playwright)."""

import os
import shutil

import pytest

from llmkit.rag import RAG, Document, Store
from llmkit.rag.layout import writer_lock
from llmkit.ui.rag_chat import add_uploads, build_rag_chat, safe_upload_name
from tests.helpers import CHROMIUM_FLAGS, require_chromium
from tests.rag.helpers import QUESTIONS, topic_documents

COMET = (
    "Comets are icy bodies that grow a glowing coma and a tail when their orbit brings them close to the Sun, "
    "because sunlight turns their ice straight into gas."
)
COMET_QUESTION = "Why do comets grow tails near the Sun?"
KETTLE = (
    "# Kettle safety\n\n<img src=x onerror=alert(1)>\n\nAn electric kettle switches itself off when a bimetallic "
    "strip bends in the steam as the water boils."
)


@pytest.fixture(scope="module")
def app_store(tmp_path_factory, embedder):
    store = Store(tmp_path_factory.mktemp("app_store"), embedder=embedder)  # its own: uploads change it
    store.add_documents(topic_documents())
    return store


@pytest.fixture(scope="module")
def app_url(app_store):
    demo = build_rag_chat(RAG(app_store, k=3))
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    yield demo.local_url
    demo.close()


def test_upload_names_cannot_escape_the_store():
    assert safe_upload_name("../../etc/passwd") == "passwd"
    assert safe_upload_name("..\\..\\evil.md") == "evil.md"
    assert safe_upload_name("..") == "upload.txt"
    assert safe_upload_name("notes (v2).md") == "notes _v2_.md"
    assert safe_upload_name("東京.md") == "東京.md" and safe_upload_name("Résumé.md") == "Résumé.md"
    assert len(safe_upload_name("東" * 300 + ".pdf").encode()) <= 200  # a file name holds 255 bytes at most


def test_app_answers_over_http_with_sources_and_survives_bad_input(app_url, app_store, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    history, sources, box = client.predict(QUESTIONS[3][0], [], 3, "hybrid", api_name="/chat")
    assert history[-1]["role"] == "assistant" and "[1]" in str(history[-1]["content"])
    assert "photosynthesis.md" in sources and "cited" in sources and "<mark>" in sources and box == ""
    assert "10 documents" in client.predict(api_name="/counts")

    history, sources, _ = client.predict("", [], 3, "hybrid", api_name="/chat")
    assert "Please type a question" in str(history[-1]["content"])

    bad = tmp_path / "..bad.md"
    bad.write_bytes(b"\x00\x00binary")
    good = tmp_path / "glaciers.md"
    good.write_text("Glaciers carve U-shaped valleys as they slowly grind downhill over centuries.")
    status = client.predict([handle_file(str(bad)), handle_file(str(good))], api_name="/add_files")
    assert (
        "Added glaciers.md" in status
        and "binary" in status
        and "11 documents" in client.predict(api_name="/counts")
    )
    assert (app_store.path / "uploads" / "glaciers.md").is_file()
    history, sources, _ = client.predict(
        "What shapes do glaciers carve into valleys?", [], 3, "dense", api_name="/chat"
    )
    # the upload is searchable at once; the app kept serving after the bad file
    assert "glaciers.md" in sources


def test_uploads_never_destroy_an_earlier_one_nor_land_beside_a_deleted_store(embedder, tmp_path):
    rag = RAG(Store(tmp_path / "store", embedder=embedder))
    lynx, badger, broken = (tmp_path / d / "notes.md" for d in ("a", "b", "c"))
    for path, data in (
        (lynx, b"Lynx have tufted ears."),
        (badger, b"Badgers dig setts."),
        (broken, b"\0bin"),
    ):
        path.parent.mkdir()
        path.write_bytes(data)
    uploaded = rag.store.path / "uploads" / "notes.md"
    assert add_uploads(rag, [str(lynx)]) == "Added notes.md (1 chunk)."
    assert "Skipped: notes.md: binary file" in add_uploads(rag, [str(broken)])
    assert (
        uploaded.read_bytes() == b"Lynx have tufted ears."
    )  # was overwritten by the binary file, then deleted
    assert (
        add_uploads(rag, [str(lynx)]) == "Added notes.md (0 chunks)."
    )  # the same file again: nothing replaced
    # another file of that name replaces the first, as a re-upload of an edited file should, and says so
    assert "Added notes.md (replaces the earlier notes.md)" in add_uploads(rag, [str(badger)])
    assert [p.name for p in uploaded.parent.iterdir()] == ["notes.md"]  # no temporary folder is left
    # while a `rag index` writes the store the upload is refused; uploads/ keeps what the store indexed (the
    # new file had replaced it, and a new name stayed in uploads/ without being in the store)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "owls.md").write_text("Owls hunt at night.")
    with writer_lock(rag.store.path):
        refused = add_uploads(rag, [str(lynx), str(tmp_path / "d" / "owls.md")])
    assert refused.startswith("Nothing added: another process is writing to the store")
    assert uploaded.read_bytes() == b"Badgers dig setts." and [p.name for p in uploaded.parent.iterdir()] == [
        "notes.md"
    ]
    rag.store.path.rename(tmp_path / "moved")  # the store deleted or moved while the app runs
    assert "is gone (deleted or moved while the app ran); restart the app" in add_uploads(rag, [str(lynx)])
    assert not rag.store.path.exists()  # was re-created holding only uploads/, and 'Added notes.md' reported


def test_an_over_long_question_is_refused_and_not_echoed_whole(app_url):
    from gradio_client import Client

    history, _, _ = Client(app_url, verbose=False).predict(
        "why? " * 20_000, [], 3, "hybrid", api_name="/chat"
    )
    assert "100,000 characters long; please keep it under 2,000" in str(history[-1]["content"])
    assert len(str(history)) < 2_000  # the whole 100 kB question travelled back with every later turn


def test_a_chat_history_gradio_cannot_read_is_named(app_url):
    # Gradio refuses these before the app's code runs; the caller got a bare "Error" and no hint of the shape
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    for history in ([["hi", "hello"]], "hello", [{"content": "hi"}], {"role": "user", "content": "hi"}):
        with pytest.raises(Exception, match=r"/chat could not read input 2, 'Chat'.*list of messages, each"):
            client.predict(COMET_QUESTION, history, 3, "hybrid", api_name="/chat")
    with pytest.raises(Exception, match=r"'Sources to retrieve \(k\)': it got 'three', and takes a number"):
        client.predict(COMET_QUESTION, [], "three", "hybrid", api_name="/chat")


def test_an_app_started_with_a_k_above_ten_answers(app_store):
    # the k slider went from 1 to 10 whatever --k said: with --k 20 every question of the page got
    # "Value 20 is greater than maximum value 10."
    from gradio_client import Client

    demo = build_rag_chat(RAG(app_store, k=20))
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        history, sources, _ = Client(demo.local_url, verbose=False).predict(
            COMET_QUESTION, [], 20, "hybrid", api_name="/chat"
        )
        assert history[-1]["role"] == "assistant" and "[1]" in sources
    finally:
        demo.close()


def test_a_running_app_sees_documents_indexed_by_another_process(app_store, embedder):
    """The store changes on disk (another Store object stands for `llmkit rag index`); the next query finds it."""
    rag = RAG(app_store, k=3)
    other = Store(app_store.path, embedder=embedder)
    other.add_documents([Document("comets.md", COMET, {"source": "comets.md", "title": "comets"})])
    answer = rag.ask(COMET_QUESTION, mode="dense")
    assert answer.sources[0].doc_id == "comets.md" and not answer.abstained
    assert app_store.index.ntotal == len(app_store)


@pytest.mark.browser
def test_chat_in_a_real_browser(app_url, app_store, tmp_path):
    """Cited sentence highlighted; abstention without citation; Markdown/HTML shown as text; live re-index."""
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    from llmkit.cli import main as llmkit_main

    docs = tmp_path / "more"
    docs.mkdir()
    (docs / "kettle.md").write_text(KETTLE)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.goto(app_url, wait_until="load")  # "networkidle" never fires on a Gradio page

        def ask(question: str, expect: str) -> None:
            page.locator("#question textarea").fill(question)
            page.locator("#ask").click()
            page.locator("#sources").get_by_text(expect).first.wait_for(timeout=60_000)

        ask(QUESTIONS[7][0], "castling.md")
        mark = page.locator("#sources mark").first
        assert "king" in mark.inner_text() and "cited" in page.locator("#sources").inner_text()

        ask("Who won the 2018 FIFA World Cup?", "No source is close enough")
        last = page.locator(".message-row, [data-testid='bot']").last.inner_text()
        assert "do not seem to contain" in page.locator("body").inner_text() and "[1]" not in last
        assert page.locator("#sources mark").count() == 0

        # `llmkit rag index` adds a document while the app runs; the next question finds it
        llmkit_main(["rag", "index", str(docs), "--store", str(app_store.path)])
        ask("How does an electric kettle know when to switch off?", "Kettle safety")
        panel = page.locator("#sources")
        assert (
            "<img src=x onerror=alert(1)>" in panel.inner_text() and "# Kettle safety" in panel.inner_text()
        )
        assert panel.locator("img").count() == 0 and panel.locator("h1").count() == 0
        # what was cited (and passed the relevance cut) shows; the rest is folded away, collapsed
        folded = panel.locator("details.below")
        assert folded.count() == 1 and not folded.get_attribute("open")
        assert "below the relevance cut" in folded.locator("summary").inner_text()
        assert (
            panel.locator(".source").first.is_visible() and not folded.locator(".source").first.is_visible()
        )
        page.screenshot(path=str(tmp_path / "sources-panel.png"), full_page=True)
        if os.environ.get("LLMKIT_SCREENSHOTS"):  # a developer's look at it
            shutil.copy(tmp_path / "sources-panel.png", os.environ["LLMKIT_SCREENSHOTS"])
        page.get_by_text("Settings").first.click()  # the counts under Settings follow the store on disk
        page.locator("#counts").get_by_text(f"{app_store.count_documents():,} documents").wait_for(
            timeout=30_000
        )
        browser.close()


def test_uploads_whose_names_differ_only_in_non_latin_letters_are_all_kept(app_url, app_store, tmp_path):
    from gradio_client import Client, handle_file

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    files = {
        "東京.md": "Tokyo holds the Imperial Palace.",
        "大阪.md": "Osaka is known for takoyaki.",
        "a/notes.md": "Ferns spread by spores.",
        "b/notes.md": "Otters hold hands while they sleep.",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    before = app_store.count_documents()
    client = Client(app_url, verbose=False)
    status = client.predict([handle_file(str(tmp_path / n)) for n in files], api_name="/add_files")
    # both were stored as "__.md", the second replacing the first; the two notes.md likewise
    assert "東京.md, 大阪.md, notes.md, notes-2.md" in status, status
    assert app_store.count_documents() == before + 4


def test_a_store_emptied_while_the_app_runs_is_named_in_the_chat(embedder, tmp_path):
    from gradio_client import Client

    from llmkit.cli import main as llmkit_main

    store = Store(tmp_path / "s", embedder=embedder)
    store.add_documents(topic_documents()[:1])
    demo = build_rag_chat(RAG(store, k=3))
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        llmkit_main(["rag", "remove", "bees.md", "--store", str(store.path)])
        history, sources, _ = Client(demo.local_url, verbose=False).predict(
            QUESTIONS[0][0], [], 3, "hybrid", api_name="/chat"
        )
    finally:
        demo.close()
    # it answered "The documents hold nothing about that.", as if the documents had been searched
    reply = str(history[-1]["content"])
    assert f"the store {store.path} is empty; add documents with `llmkit rag index" in reply, reply
    assert "or upload files under Add documents" in reply
