"""A token that sits in an indexed document never reaches the screen: CLI answers, --json, the chat and its panel."""

import json

import pytest

from llmkit.cli import main as llmkit_main
from llmkit.rag import RAG, Document, Store
from llmkit.ui.rag_chat import build_rag_chat

# Built at run time so that no file of this repository holds a token-shaped string.
TOKEN = "hf_" + "Tq3Wm8Xc2Vb7Nz4Lk9Pd5Rs1Gh6Jf0Ay2E"
DEPLOY = (
    f"# Deploying\n\nTo deploy the docs site, log in with the access token {TOKEN} and run the upload script. "
    "The upload takes about two minutes."
)
QUESTION = "Which access token do I log in with to deploy the docs site?"


@pytest.fixture(scope="module")
def token_store(tmp_path_factory, embedder):
    store = Store(tmp_path_factory.mktemp("token") / "store", embedder=embedder)
    store.add_documents(
        [
            Document("deploy.md", DEPLOY, {"source": "deploy.md", "title": "deploy"}),
            Document("tea.md", "Green tea steeps at 80 degrees for two minutes.", {"source": "tea.md"}),
        ]
    )
    return store


def test_the_cli_never_prints_a_token_from_a_document(token_store, capsys):
    assert TOKEN in RAG(token_store, k=2).ask(QUESTION).text  # the answer quotes it: the CLI must not show it
    for extra in ([], ["--json"]):
        llmkit_main(["rag", "ask", QUESTION, "--store", str(token_store.path), "--k", "2", *extra])
        captured = capsys.readouterr()
        assert TOKEN not in captured.out + captured.err and "<redacted>" in captured.out
    result = json.loads(captured.out)
    assert "<redacted>" in result["answer"] and "<redacted>" in result["sources"][0]["text"]


def test_the_chat_never_shows_a_token_from_a_document(token_store):
    from gradio_client import Client

    demo = build_rag_chat(RAG(token_store, k=2))
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        history, panel, _ = Client(demo.local_url, verbose=False).predict(
            QUESTION, [], 2, "hybrid", api_name="/chat"
        )
    finally:
        demo.close()
    answer = json.dumps(history)
    assert TOKEN not in answer and TOKEN not in panel
    assert "<redacted>" in answer and "&lt;redacted&gt;" in panel and "deploy.md" in panel


def test_the_server_never_serves_a_token_from_a_document(token_store):
    import threading
    import urllib.request
    from http.server import ThreadingHTTPServer

    from llmkit.rag.serve import Service, make_handler

    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(Service(RAG(token_store, k=2), "store")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        for endpoint in ("/ask", "/search"):
            body = json.dumps({"question": QUESTION}).encode()
            with urllib.request.urlopen(urllib.request.Request(url + endpoint, data=body), timeout=30) as r:
                served = r.read().decode()
            assert TOKEN not in served and "<redacted>" in served, endpoint
    finally:
        server.shutdown()
        server.server_close()
