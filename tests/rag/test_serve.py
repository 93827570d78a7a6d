"""`llmkit rag serve` in a real subprocess, asked over HTTP and by `llmkit rag ask --server`."""

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import pytest

from llmkit.cli import main as llmkit_main
from tests.rag.helpers import QUESTIONS, post, raw_request

# The client must not load a model: these modules must stay unimported on the `--server` path.
CLIENT = """
import sys
from llmkit.cli import main
try:
    main(sys.argv[1:])
finally:
    heavy = [m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules]
    print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def server(topic_store):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    argv = ["rag", "serve", "--store", str(topic_store.path), "--port", "0", "--k", "3"]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from llmkit.cli import main; main()", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()  # printed once the models are loaded and the port is bound
        assert "serving" in line and "http://127.0.0.1:" in line, line
        yield line.split(" at ")[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow  # starting the server loads the embedding model in a new process (~10 s)
def test_serve_answers_over_http(server):
    question = QUESTIONS[5][0]  # rebasing
    code, result = post(server + "/ask", json.dumps({"question": question}).encode())
    assert code == 200 and set(result) == {"answer", "citations", "abstained", "span", "sources"}
    assert result["abstained"] is False and result["citations"][0]["doc_id"] == "rebase.md"
    assert "re-applies them" in result["citations"][0]["sentence"] and "[1]" in result["answer"]
    assert len(result["sources"]) == 3  # the server's --k

    code, found = post(server + "/search", json.dumps({"question": question, "k": 2}).encode())
    assert code == 200 and len(found["hits"]) == 2 and found["hits"][0]["doc_id"] == "rebase.md"
    with urllib.request.urlopen(server + "/status", timeout=10) as response:
        status = json.loads(response.read())
    assert status["documents"] == 10 and status["chunks"] >= 10
    assert status["models"]["embedding"].endswith("all-MiniLM-L6-v2")

    for body, message in [
        (b"{not json", "not valid JSON"),
        (b'{"filters": {}}', '"question" is missing'),
        (b'["a list"]', "JSON object"),
        (json.dumps({"question": "hi", "mode": "fuzzy"}).encode(), "unknown retrieval mode"),
    ]:
        code, error = post(server + "/ask", body)
        assert code == 400 and message in error["error"] and "Traceback" not in error["error"], error


@pytest.mark.slow
def test_ask_server_loads_no_model(server, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for as_json in (["--json"], []):
        argv = ["rag", "ask", "--server", server, QUESTIONS[0][0], *as_json]
        done = subprocess.run(
            [sys.executable, "-c", CLIENT, *argv], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "HEAVY=\n" in done.stderr or done.stderr.rstrip().endswith("HEAVY="), done.stderr
    assert "waggle dance" in done.stdout and "Sources:" in done.stdout and "*[1] bees.md" in done.stdout


def test_ask_server_unreachable(capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["rag", "ask", "--server", f"http://127.0.0.1:{port}", "hello?"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "cannot reach the llmkit rag server" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_store_deleted_while_serving_is_a_503_that_says_so(tmp_path):
    from types import SimpleNamespace

    from llmkit.rag.serve import Service, make_handler

    rag = SimpleNamespace(store=SimpleNamespace(path=tmp_path / "gone"))  # its store.sqlite is not there
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(Service(rag, str(tmp_path / "gone"))))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:  # /status dropped the connection without a reply; /ask blamed a folder "that cannot be written"
        assert raw_request(url, b"GET /status HTTP/1.0\r\n\r\n")[0] == 503
        code, error = post(url + "/ask", b'{"question": "hi"}')
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert code == 503 and "is gone (deleted or moved while the server ran); rebuild it" in error["error"]


@pytest.mark.parametrize(
    ("server", "message"),
    [
        (
            "http://127.0.0.1:notaport",
            "is not a valid URL (Port could not be cast",
        ),  # these three were tracebacks
        ("http://[::1", "is not a valid URL (Invalid IPv6 URL)"),
        ("http://exa mple:8765", "names no valid host"),
        ("http://127.0.0.1:99999", "Port out of range"),
        ("127.0.0.1:8765", "is not an http:// URL"),
    ],
)
def test_ask_server_with_a_malformed_url_says_what_is_wrong(server, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["rag", "ask", "--server", server, "hello?"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err, err


def test_a_metadata_filter_sqlite_cannot_read_is_a_400_not_a_500(topic_store):
    from llmkit.rag import RAG
    from llmkit.rag.serve import Service, make_handler

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(Service(RAG(topic_store), "s")))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        for where, message in [({'"': "x"}, "without '\"'"), ({"page": 10**23}, "too large to compare")]:
            body = json.dumps({"question": "bees", "filters": {"where": where}}).encode()
            for endpoint in ("/ask", "/search"):
                code, error = post(url + endpoint, body)
                assert code == 400 and message in error["error"], (endpoint, error)
        # a glob matching no source path was answered "The documents hold nothing about that" (HTTP 200)
        for filters, message in [
            ({"source": "docs/*.md"}, "the source filter 'docs/*.md' matches no document"),
            ({"where": {"lang": "xx"}}, "no chunk has the metadata {'lang': 'xx'}"),
        ]:
            code, error = post(url + "/ask", json.dumps({"question": "bees", "filters": filters}).encode())
            assert code == 400 and message in error["error"], error
        for endpoint in ("/ask", "/search"):  # an OverflowError in SQLite's LIMIT: HTTP 500
            assert post(url + endpoint, json.dumps({"question": "bees", "k": 2**63 - 1}).encode())[0] == 200
        assert post(url + "/search", b'{"question": "bees", "k": 1}')[0] == 200  # still serving
        assert post(url + "/ask", b'{"question": "bees", "filters": {"source": "bee*"}}')[0] == 200
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_serve_binds_before_loading_and_warns_off_loopback(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit):  # no store there: the port is named first, before anything loads
            llmkit_main(["rag", "serve", "--store", str(tmp_path / "none"), "--port", str(port)])
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in err and "no store" not in err
    with pytest.raises(SystemExit):  # the API has no authentication: said before it is served to a network
        llmkit_main(["rag", "serve", "--store", str(tmp_path / "none"), "--host", "0.0.0.0", "--port", "0"])
    err = capsys.readouterr().err
    assert "warning: --host 0.0.0.0 serves the API to other machines, and it has no authentication" in err
    assert "no store at" in err
    with pytest.raises(SystemExit):
        llmkit_main(["rag", "serve", "--store", str(tmp_path / "none"), "--port", "0"])
    assert "warning" not in capsys.readouterr().err


def test_a_server_that_takes_the_question_and_never_answers_is_not_called_unreachable():
    from llmkit.errors import UserError
    from llmkit.rag.client import ask_server

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(UserError, match="took the question but did not answer within 0.5 s") as err:
            ask_server(url, {"question": "hi"}, timeout=0.5)
    assert "cannot reach" not in str(err.value)


def test_ctrl_c_while_waiting_for_a_server_says_what_it_left(tmp_path):
    import signal
    import time

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from llmkit.cli import main; main()",
                "rag",
                "ask",
                "hi",
                "--server",
                url,
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        silent.settimeout(60)
        with silent.accept()[0]:  # the question is sent: the client waits for the reply
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            err = proc.communicate(timeout=30)[1]
    # it said "checkpoints already saved are kept; run the same command to resume", the pretraining recipe's line
    assert proc.returncode == 130 and "interrupted: stopped; the store was only read." in err, err


def test_a_store_emptied_while_serving_is_a_503_that_says_so(embedder, tmp_path):
    from llmkit.rag import RAG, Store
    from llmkit.rag.serve import Service, make_handler
    from tests.rag.helpers import topic_documents

    store = Store(tmp_path / "s", embedder=embedder)
    store.add_documents(topic_documents()[:2])
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(Service(RAG(store), str(store.path))))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        assert post(url + "/ask", b'{"question": "How do bees find flowers?"}')[0] == 200
        llmkit_main(["rag", "remove", "bees.md", "volcanoes.md", "--store", str(store.path)])
        # /ask was a 200 "The documents hold nothing about that.", while `rag ask` refuses an empty store
        for endpoint in ("/ask", "/search"):
            code, error = post(url + endpoint, b'{"question": "How do bees find flowers?"}')
            assert code == 503 and f"the store {store.path} is empty; add documents with" in error["error"]
        with urllib.request.urlopen(url + "/status", timeout=10) as response:
            assert json.loads(response.read())["chunks"] == 0  # the server stays up and says what it holds
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_ask_server_without_k_or_mode_gets_the_servers_own(topic_store, capsys):
    from llmkit.rag import RAG
    from llmkit.rag.serve import Service, make_handler

    rag = RAG(topic_store, k=2, mode="lexical")  # as `rag serve --k 2 --mode lexical`
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(Service(rag, "s")))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        question = QUESTIONS[0][0]
        # the client sent its own defaults, k 5 and hybrid, which overrode the server's --k and --mode
        llmkit_main(["rag", "ask", "--server", url, question, "--json"])
        assert len(json.loads(capsys.readouterr().out)["sources"]) == 1  # lexical: only bees.md has the words
        llmkit_main(["rag", "ask", "--server", url, question, "--json", "--k", "5", "--mode", "dense"])
        assert len(json.loads(capsys.readouterr().out)["sources"]) == 5  # given: they travel
    finally:
        httpd.shutdown()
        httpd.server_close()
