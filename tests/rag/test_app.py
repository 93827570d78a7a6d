"""The RAG chat app over HTTP (gradio_client) and in a real browser (Debian's Chromium via Playwright)."""

import os
import shutil

import pytest

from llmkit.rag import RAG, Store
from llmkit.ui.rag_chat import build_rag_chat, safe_upload_name
from tests.rag.conftest import QUESTIONS, topic_documents

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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


def test_app_answers_over_http_with_sources_and_survives_bad_input(app_url, app_store, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    history, sources, box = client.predict(QUESTIONS[3][0], [], 3, "hybrid", api_name="/chat")
    assert history[-1]["role"] == "assistant" and "[1]" in str(history[-1]["content"])
    assert "photosynthesis.md" in sources and "cited" in sources and box == ""

    history, sources, _ = client.predict("", [], 3, "hybrid", api_name="/chat")
    assert "Please type a question" in str(history[-1]["content"])

    bad = tmp_path / "..bad.md"
    bad.write_bytes(b"\x00\x00binary")
    good = tmp_path / "glaciers.md"
    good.write_text("Glaciers carve U-shaped valleys as they slowly grind downhill over centuries.")
    status = client.predict([handle_file(str(bad)), handle_file(str(good))], api_name="/add_files")
    assert "Added glaciers.md" in status and "binary" in status
    assert (app_store.path / "uploads" / "glaciers.md").is_file()
    history, sources, _ = client.predict("What shapes do glaciers carve into valleys?", [], 3, "dense", api_name="/chat")
    assert "glaciers.md" in sources  # the upload is searchable at once; the app kept serving after the bad file


@pytest.mark.browser
def test_chat_in_a_real_browser(app_url):
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing; .ci/run installs Debian's chromium package.")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.goto(app_url, wait_until="load")  # "networkidle" never fires on a Gradio page
        page.locator("#question textarea").fill(QUESTIONS[7][0])
        page.locator("#ask").click()
        page.get_by_text("[1]", exact=False).first.wait_for(timeout=30_000)
        page.locator("#sources").get_by_text("castling.md").first.wait_for(timeout=30_000)
        assert "castling.md" in page.locator("#sources").inner_text()
        browser.close()
