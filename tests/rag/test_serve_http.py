"""rag serve's HTTP layer, against a service without models: bad requests, HTTP-level mistakes, bursts."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmkit.cli import main as llmkit_main
from tests.rag.helpers import post, raw_reply, raw_request


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
    code, error = raw_request(stub_server, b"PUT /ask HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}")
    assert code == 405 and "PUT is not served; use GET /status, POST /ask" in error["error"]
    code, error = raw_request(stub_server, b"GET /ask HTTP/1.0\r\n\r\n")
    assert code == 405 and "/ask takes POST" in error["error"]
    head = raw_reply(stub_server, b"HEAD /status HTTP/1.0\r\n\r\n")  # headers as GET's, no body
    assert head.startswith(b"HTTP/1.0 200") and b"application/json" in head and head.endswith(b"\r\n\r\n")
    head = raw_reply(stub_server, b"OPTIONS /ask HTTP/1.0\r\n\r\n")  # was http.server's HTML 501 page
    assert head.startswith(b"HTTP/1.0 204") and b"Allow: GET, HEAD, POST, OPTIONS" in head
    for length in (b"-1", b"abc"):  # -1 used to keep the server reading until the client hung up
        code, error = raw_request(
            stub_server, b"POST /ask HTTP/1.0\r\nContent-Length: " + length + b"\r\n\r\n{}"
        )
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
        status, error = raw_request(stub_server, request)
        assert status == code and message in error["error"], (request[:40], error)
    host, port = stub_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:  # hangs up in the middle of its body
        s.sendall(b'POST /ask HTTP/1.0\r\nContent-Length: 500\r\n\r\n{"question"')
    assert post(stub_server + "/ask", b'{"question": "hi"}')[0] == 200
    assert "Traceback" not in capsys.readouterr().err  # was a BrokenPipeError traceback per hang-up


def test_a_client_that_stops_sending_gets_408_and_frees_its_thread(monkeypatch, stub_server):
    from llmkit.rag import serve

    monkeypatch.setattr(serve.Handler, "timeout", 0.5)  # 30 s in use; a stalled client held a thread for ever
    code, error = raw_request(stub_server, b'POST /ask HTTP/1.0\r\nContent-Length: 500\r\n\r\n{"question"')
    assert code == 408 and "did not arrive within" in error["error"]


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
