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
    ]:
        code, error = post(stub_server + "/ask", json.dumps(payload).encode())
        assert code == 400 and message in error["error"], (payload, error)
    assert post(stub_server + "/ask?verbose=1", b'{"question": "hi", "k": 2}') == (200, _Stub().ask({"k": 2}))
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


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b"<html>hello</html>", "did not answer as llmkit's API does"),
        (200, b'{"ok": true}', "did not answer as llmkit's API does"),
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
