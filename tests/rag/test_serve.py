"""`llmkit rag serve` in a real subprocess, asked over HTTP and by `llmkit rag ask --server`."""

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmkit.cli import main as llmkit_main
from tests.rag.helpers import QUESTIONS

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


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


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


class _Stub:
    """A Service without models: the HTTP layer's checks are what is tested."""

    def ask(self, options: dict) -> dict:
        return {"answer": f"k={options.get('k')}", "citations": [], "abstained": False, "sources": []}

    search = ask

    def status(self) -> dict:
        return {"documents": 0}


@pytest.fixture
def stub_server():
    from llmkit.rag.serve import make_handler

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(_Stub()))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _raw_reply(url: str, request: bytes) -> bytes:
    """Send a hand-written HTTP request; the whole reply. A server that waits instead fails the test."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(request)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply


def _raw(url: str, request: bytes) -> tuple[int, dict]:
    """Send a hand-written HTTP request; (status, JSON body)."""
    head, _, body = _raw_reply(url, request).partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_bad_requests_get_a_json_error_naming_the_field(stub_server):
    from llmkit.rag.pipeline import MAX_QUESTION_CHARS
    from llmkit.rag.serve import MAX_QUESTION_CHARS as SERVER_LIMIT

    assert SERVER_LIMIT == MAX_QUESTION_CHARS
    for payload, message in [
        ({"question": 5}, '"question" must be a string, not int'),
        ({"question": ["a"]}, '"question" must be a string, not list'),
        ({"question": "a" * 2001}, '"question" is 2,001 characters long; the limit is 2,000'),
        ({"question": "hi", "k": 0}, '"k" must be at least 1, got 0'),
        ({"question": "hi", "filters": {"source": 5}}, '"filters"."source" must be a glob string'),
        ({"question": "hi", "filters": {"where": "x"}}, '"filters"."where" must be an object'),
        # these were HTTP 500s (SQLite could not bind a list, the tokenizer a lone surrogate) or silently ignored
        ({"question": "hi", "filters": {"where": {"a": [1]}}}, "got 'a': [1]"),
        ({"question": "hi", "filters": {"where": {"": 1}}}, "must map metadata names"),
        ({"question": "hi \ud800"}, "unpaired surrogate escape"),
        # these were taken for the defaults, silently
        ({"question": "hi", "filters": []}, '"filters" must be an object'),
        ({"question": "hi", "filters": ""}, '"filters" must be an object'),
        ({"question": "hi", "mode": ""}, '"mode" is empty; give one of dense, lexical, hybrid'),
        ({"question": "hi", "k": "3"}, '"k" must be an integer, not str'),
        (
            {"question": "hi", "top_k": 2},
            "unknown field 'top_k'; a request's fields are question, filters, k",
        ),
    ]:
        code, error = post(stub_server + "/ask", json.dumps(payload).encode())
        assert code == 400 and message in error["error"], (payload, error)
    code, error = post(
        stub_server + "/ask", b"[" * 100_000 + b"]" * 100_000
    )  # was a RecursionError, HTTP 500
    assert code == 400 and "nests too deeply" in error["error"]
    code, error = post(stub_server + "/ask", b'{"question": "hi", "k": 1' + b"0" * 5000 + b"}")
    assert (
        code == 400 and "not valid JSON (Exceeds the limit" in error["error"] and "sys." not in error["error"]
    )
    assert post(stub_server + "/ask?verbose=1", b'{"question": "hi", "k": 2}') == (200, _Stub().ask({"k": 2}))
    code, error = post(stub_server + "/ask?k=3&mode=dense", b'{"question": "hi"}')  # k=3 was ignored
    assert code == 400 and "k, mode in the URL is not read; send it in the JSON body" in error["error"]
    code, error = _raw(stub_server, b"PUT /ask HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}")
    assert code == 405 and "PUT is not served; use GET /status, POST /ask" in error["error"]
    code, error = _raw(stub_server, b"GET /ask HTTP/1.0\r\n\r\n")
    assert code == 405 and "/ask takes POST" in error["error"]
    head = _raw_reply(stub_server, b"HEAD /status HTTP/1.0\r\n\r\n")  # headers as GET's, no body
    assert head.startswith(b"HTTP/1.0 200") and b"application/json" in head and head.endswith(b"\r\n\r\n")
    head = _raw_reply(stub_server, b"OPTIONS /ask HTTP/1.0\r\n\r\n")  # was http.server's HTML 501 page
    assert head.startswith(b"HTTP/1.0 204") and b"Allow: GET, HEAD, POST, OPTIONS" in head
    for length in (b"-1", b"abc"):  # -1 used to keep the server reading until the client hung up
        code, error = _raw(stub_server, b"POST /ask HTTP/1.0\r\nContent-Length: " + length + b"\r\n\r\n{}")
        assert code == 400 and "is not a byte count" in error["error"], error


def test_a_key_given_twice_is_a_400_naming_it(stub_server):
    for body, key in [  # the last value won, silently: a client's mistake answered as if it were meant
        (b'{"question": "a", "question": "b"}', "'question'"),
        (b'{"question": "a", "filters": {"source": "x*", "source": "*.md"}}', "'source'"),
    ]:
        code, error = post(stub_server + "/ask", body)
        assert code == 400 and f"gives the key {key} more than once" in error["error"], error
    assert post(stub_server + "/ask", b'{"question": "a", "k": 2}')[0] == 200  # the server keeps serving


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b"<html>hello</html>", "did not answer as llmkit's API does"),
        (200, b'{"ok": true}', "did not answer as llmkit's API does"),
        # the right keys with other shapes: a KeyError/TypeError traceback while printing the sources
        (200, b'{"answer": "x", "citations": [{}], "sources": [{}]}', "did not answer as llmkit's API does"),
        (200, b'{"answer": "x", "citations": 5, "sources": null}', "did not answer as llmkit's API does"),
        (501, b"<html>Unsupported method</html>", "refused the question (HTTP 501)"),
    ],
)
def test_ask_server_that_is_not_llmkit_says_so(status, body, expected, capsys):
    class Other(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Other)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with pytest.raises(SystemExit) as exit_:
            llmkit_main(["rag", "ask", "--server", url, "hello?"])
    finally:
        httpd.shutdown()
        httpd.server_close()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err, err
    assert expected in err and f"is {url} a `llmkit rag serve`?" in err


def test_http_level_mistakes_get_json_errors_and_the_server_keeps_serving(stub_server, capsys):
    for request, code, message in [
        (b"POST /status HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", 405, "/status takes GET"),  # was 404
        # no Content-Length was read as an empty body: "must be a JSON object"
        (b"POST /ask HTTP/1.0\r\n\r\n", 411, "no Content-Length"),
        (b"POST /ask HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411, "chunked"),
        # http.server's own refusals were HTML pages
        (b"BREW /ask HTTP/1.0\r\n\r\n", 501, "Unsupported method ('BREW'); use GET /status"),
        (b"GET /a b HTTP/1.0\r\n\r\n", 400, "Bad request syntax"),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.0\r\n\r\n", 414, "Request-URI Too Long"),
    ]:
        status, error = _raw(stub_server, request)
        assert status == code and message in error["error"], (request[:40], error)
    host, port = stub_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:  # hangs up in the middle of its body
        s.sendall(b'POST /ask HTTP/1.0\r\nContent-Length: 500\r\n\r\n{"question"')
    assert post(stub_server + "/ask", b'{"question": "hi"}')[0] == 200
    assert "Traceback" not in capsys.readouterr().err  # was a BrokenPipeError traceback per hang-up


def test_a_client_that_stops_sending_gets_408_and_frees_its_thread(monkeypatch, stub_server):
    from llmkit.rag import serve

    monkeypatch.setattr(serve.Handler, "timeout", 0.5)  # 30 s in use; a stalled client held a thread for ever
    code, error = _raw(stub_server, b'POST /ask HTTP/1.0\r\nContent-Length: 500\r\n\r\n{"question"')
    assert code == 408 and "did not arrive within" in error["error"]


def test_a_store_deleted_while_serving_is_a_503_that_says_so(tmp_path):
    from types import SimpleNamespace

    from llmkit.rag.serve import Service, make_handler

    rag = SimpleNamespace(store=SimpleNamespace(path=tmp_path / "gone"))  # its store.sqlite is not there
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(Service(rag, str(tmp_path / "gone"))))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:  # /status dropped the connection without a reply; /ask blamed a folder "that cannot be written"
        assert _raw(url, b"GET /status HTTP/1.0\r\n\r\n")[0] == 503
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


def test_ask_server_takes_an_endpoint_url_and_any_scheme_case(stub_server, capsys):
    from llmkit.rag.client import server_url

    assert (
        server_url(" HTTP://h:1/ask/ ") == "http://h:1"
        and server_url("http://h:1/x/search") == "http://h:1/x"
    )
    for server in (
        stub_server + "/ask",
        stub_server.replace("http", "HTTP") + "/",
    ):  # were a 404 and a refusal
        llmkit_main(["rag", "ask", "--server", server, "hello?", "--k", "3"])
        assert "k=3" in capsys.readouterr().out


def test_a_burst_of_100_clients_is_served_without_resets():
    import time
    from concurrent.futures import ThreadPoolExecutor

    from llmkit.rag.serve import APIServer, make_handler

    class Slow(_Stub):
        def ask(self, options: dict) -> dict:
            time.sleep(0.02)  # a question takes a while: connections queue up
            return super().ask(options)

    httpd = APIServer(
        ("127.0.0.1", 0), make_handler(Slow())
    )  # http.server's backlog of 5 reset ~half of them
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/ask"
    try:
        with ThreadPoolExecutor(100) as pool:
            codes = list(pool.map(lambda _: post(url, b'{"question": "hi"}')[0], range(100)))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert codes == [200] * 100


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
