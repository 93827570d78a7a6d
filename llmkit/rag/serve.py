"""`llmkit rag serve`: one long-lived process that holds the models, answering over a small HTTP JSON API.

    POST /ask     {"question": "...", "filters": {"source": "docs/*.md"}, "k": 5, "mode": "hybrid"}
                  -> the JSON `llmkit rag ask --json` prints
    POST /search  {"question": "...", "k": 5, "mode": "hybrid", "filters": {...}} -> {"hits": [...]}
    GET  /status  -> the store's documents and chunks, and the models loaded

It binds 127.0.0.1 by default: the API has no authentication, so it is for programs on this machine.
`llmkit rag ask --server URL` is its client (llmkit.rag.client). This module imports only the standard
library too (the models come with the Service it is given), so the client may use its limits.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from llmkit.errors import UserError
from llmkit.sentences import is_text

MAX_BODY = 1_000_000  # bytes: a question is short; a bigger body is a mistake (or worse)
MAX_QUESTION_CHARS = 2000  # kept here, where the client side loads no model code; the pipeline imports it
FILTER_KEYS = ("source", "where")
POST_ONLY = ("/ask", "/search")
READ_TIMEOUT = 30  # seconds a client may pause while it sends a request
ALLOW = "GET, HEAD, POST, OPTIONS"
USAGE = "use GET /status, POST /ask or /search"


FIELDS = ("question", "filters", "k", "mode")
WHERE_VALUES = (str, int, float, bool, type(None))  # what a metadata value is compared with


class DuplicateKey(ValueError):
    """A JSON object that names one key twice (json.loads kept the last value, silently)."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """json.loads's object hook: the object as a dict, or DuplicateKey naming the first repeated key."""
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen[key] = value
    return seen


class BadRequest(Exception):
    """A request the server cannot act on: answered with HTTP `status` (400 unless said) and this message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def request_options(body: bytes, query: str = "") -> dict:
    """The question, filters, k and mode of a request body; BadRequest with a clear message if it is wrong."""
    misplaced = sorted(set(parse_qs(query, keep_blank_values=True)) & {*FIELDS, *FILTER_KEYS})
    if misplaced:  # POST /ask?k=3 was answered with the default k, silently
        raise BadRequest(
            f"{', '.join(misplaced)} in the URL is not read; send it in the JSON body, "
            'e.g. {"question": "...", "k": 3}.'
        )
    try:
        payload = json.loads(body or b"null", object_pairs_hook=_unique_keys)
    except DuplicateKey as err:
        raise BadRequest(
            f"the request body gives the key {str(err)!r} more than once; send each key once."
        ) from None
    except RecursionError:  # [[[[...]]]] a few thousand deep was an HTTP 500
        raise BadRequest('the request body nests too deeply; send {"question": "..."}.') from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, a number of over 4,300 digits
        reason = str(err).split(";")[0]  # not Python's advice to call sys.set_int_max_str_digits()
        raise BadRequest(
            f'the request body is not valid JSON ({reason}); send {{"question": "..."}}.'
        ) from None
    if not isinstance(payload, dict):
        raise BadRequest('the request body must be a JSON object like {"question": "..."}.')
    unknown = sorted(set(payload) - set(FIELDS))
    if unknown:  # a misspelt option ("top_k") was silently ignored and the default used
        raise BadRequest(
            f"unknown field {', '.join(map(repr, unknown))}; a request's fields are {', '.join(FIELDS)}."
        )
    if not is_text(json.dumps(payload, ensure_ascii=False)):
        raise BadRequest(
            "the request holds an unpaired surrogate escape (such as \\ud800), which is not text; "
            "send the question as UTF-8 text."
        )
    question = payload.get("question")
    if question is not None and not isinstance(question, str):
        raise BadRequest(
            f'"question" must be a string, not {type(question).__name__}; send {{"question": "..."}}.'
        )
    if not question or not question.strip():
        raise BadRequest('"question" is missing or empty; send {"question": "...", "filters": {...}}.')
    if len(question) > MAX_QUESTION_CHARS:  # a 200 with a refusal as its "answer" would read as an answer
        raise BadRequest(
            f'"question" is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}.'
        )
    filters = {} if payload.get("filters") is None else payload["filters"]  # [] or "" were taken for none
    if not isinstance(filters, dict) or set(filters) - set(FILTER_KEYS):
        raise BadRequest(f'"filters" must be an object with keys among {", ".join(FILTER_KEYS)}.')
    # A wrong type here either failed deep in retrieval (HTTP 500) or matched nothing and abstained.
    if not isinstance(filters.get("source", ""), str):
        raise BadRequest('"filters"."source" must be a glob string, e.g. "docs/*.md".')
    where = filters.get("where", {})
    if not isinstance(where, dict):
        raise BadRequest('"filters"."where" must be an object of metadata values, e.g. {"lang": "en"}.')
    for key, value in where.items():  # a list or object value failed in SQLite (HTTP 500)
        if not key or not isinstance(value, WHERE_VALUES):
            raise BadRequest(
                '"filters"."where" must map metadata names to a string, number, boolean or null, e.g. '
                f'{{"lang": "en"}}; got {key!r}: {json.dumps(value)[:60]}.'
            )
    options = {"question": question, "filters": filters}
    for key, kind, name in (("k", int, "an integer"), ("mode", str, "a string")):
        if payload.get(key) is not None:
            if not isinstance(payload[key], kind) or isinstance(payload[key], bool):
                raise BadRequest(f'"{key}" must be {name}, not {type(payload[key]).__name__}.')
            options[key] = payload[key]
    if options.get("mode") == "":  # it was taken for the server's default mode
        raise BadRequest('"mode" is empty; give one of dense, lexical, hybrid, or leave it out.')
    if options.get("k", 1) < 1:  # 0 was taken for "the server's default"
        raise BadRequest(f'"k" must be at least 1, got {options["k"]}.')
    return options


class StoreGone(Exception):
    """The served store's folder was deleted or moved while the server ran: answered with HTTP 503."""


class StoreEmpty(Exception):
    """The served store holds no chunks (all removed while the server ran): answered with HTTP 503."""


class Service:
    """The loaded pipeline behind the API: one RAG, asked one question at a time."""

    def __init__(self, rag, store_path: str, filters: dict | None = None):
        self.rag = rag
        self.filters = filters or {}  # the server's own filters (--source); a request's own win
        self.store_path = store_path
        self.started = time.time()
        self._lock = threading.Lock()  # generators and the reader are not safe to call from two threads

    def ask(self, options: dict) -> dict:
        """The answer as `rag ask --json` prints it (secrets redacted)."""
        from llmkit.secrets import redact

        self.check_store()
        self.check_not_empty()
        with self._lock:
            answer = self.rag.ask(
                options["question"], k=options.get("k"), mode=options.get("mode"), **self._filters(options)
            )
        return redact(answer.to_dict())

    def search(self, options: dict) -> dict:
        """The retrieved chunks, best first."""
        from llmkit.secrets import redact

        self.check_store()
        self.check_not_empty()
        with self._lock:
            hits = self.rag.retriever.search(
                options["question"],
                options.get("k") or self.rag.k,
                options.get("mode") or self.rag.mode,
                **self._filters(options),
            )
        return redact(
            {
                "hits": [
                    {
                        "n": n,
                        "doc_id": h.doc_id,
                        "source": h.metadata.get("source", h.doc_id),
                        "page": h.page,
                        "score": round(h.score, 4),
                        "similarity": round(h.similarity, 4),
                        "text": h.text,
                    }
                    for n, h in enumerate(hits, start=1)
                ]
            }
        )

    def _filters(self, options: dict) -> dict:
        """The server's filters with the request's own; BadRequest when no chunk passes them (a mistyped glob)."""
        filters = {**self.filters, **options["filters"]}
        self.rag.store.refresh()  # documents indexed since may match
        problem = self.rag.retriever.filter_problem(**filters)
        if problem:
            raise BadRequest(problem)
        return filters

    def check_store(self) -> None:
        """StoreGone when the store's database is no longer on disk (SQLite then blamed a read-only folder)."""
        from llmkit.rag.layout import DATABASE

        folder = self.rag.store.path
        if not (folder / DATABASE).is_file():
            raise StoreGone(
                f"the store {folder} is gone (deleted or moved while the server ran); rebuild it with "
                f"`llmkit rag index PATH --store {folder}` (the server picks it up), or restart the server "
                "with another --store."
            )

    def check_not_empty(self) -> None:
        """StoreEmpty when the store holds no chunks: `rag ask` refuses it, and an answer of "the documents hold
        nothing about that" read as if the documents had been searched."""
        from llmkit.rag.layout import empty_store

        self.rag.store.refresh()  # `rag remove` may have emptied it, or `rag index` filled it, since
        if len(self.rag.store) == 0:
            raise StoreEmpty(
                f"{empty_store(self.rag.store.path)} The server picks them up without a restart."
            )

    def status(self) -> dict:
        """What is loaded and how big the store is."""
        self.check_store()
        store = self.rag.store
        store.refresh()
        return {
            "store": self.store_path,
            "documents": store.count_documents(),
            "chunks": len(store),
            "models": {
                "embedding": store.embedder.name,
                "generator": getattr(self.rag.generator, "name", type(self.rag.generator).__name__),
                "reranker": self.rag.retriever.reranker_name,
            },
            "mode": self.rag.mode,
            "k": self.rag.k,
            "uptime_s": round(time.time() - self.started, 1),
        }


def body_length(headers) -> int:
    """Content-Length, checked: a negative one made the read wait for the client to hang up, and a missing one
    (no body, or a chunked one) was read as an empty body and answered "must be a JSON object"."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        raise BadRequest("a chunked request body is not read; send the JSON body with a Content-Length.", 411)
    raw = headers.get("Content-Length")
    if raw is None:
        raise BadRequest(
            'the request has no Content-Length (no body?); send {"question": "..."} as JSON.', 411
        )
    if not raw.isdigit():
        raise BadRequest(f"Content-Length {raw!r} is not a byte count; send the JSON body's length.")
    if int(raw) > MAX_BODY:
        raise BadRequest(f"the request body is {int(raw):,} bytes; the limit is {MAX_BODY:,}.", 413)
    return int(raw)


class Handler(BaseHTTPRequestHandler):
    """The API's routes over `service`; every reply, errors included, is JSON."""

    server_version = "llmkit-rag"
    timeout = READ_TIMEOUT  # a client that stops sending mid-request no longer holds its thread for ever
    service: Service

    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = self._endpoint()
        if path in ("/status", ""):
            self._run(self.service.status)
        elif path in POST_ONLY:
            self._reply(405, {"error": f"{path} takes POST with a JSON body; GET serves /status only."})
        else:
            self._reply(404, {"error": f"no such endpoint {self.path}; {USAGE}."})

    def do_POST(self):  # noqa: N802
        routes = {"/ask": self.service.ask, "/search": self.service.search}
        path = self._endpoint()
        if path in ("/status", ""):
            self._reply(405, {"error": "/status takes GET; POST /ask or /search with a JSON body."})
        elif path not in routes:
            self._reply(404, {"error": f"no such endpoint {self.path}; use POST /ask or /search."})
        else:
            self._run(lambda: routes[path](request_options(self._body(), urlsplit(self.path).query)))

    def _body(self) -> bytes:
        """The request body, all of it; BadRequest if the client stops sending or hangs up first."""
        length = body_length(self.headers)
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            raise BadRequest(f"the request body did not arrive within {READ_TIMEOUT} s.", 408) from None
        if len(body) < length:
            self.close_connection = True
            raise BadRequest(f"the request body ended after {len(body):,} of its {length:,} bytes.")
        return body

    def _run(self, work) -> None:
        """Reply with what `work()` returns, or with a JSON error: the server keeps serving either way."""
        try:
            self._reply(200, work())
        except BadRequest as err:
            self._reply(err.status, {"error": str(err)})
        except (StoreGone, StoreEmpty) as err:  # the server's store, not the request, is what is wrong
            self._reply(503, {"error": str(err)})
        except (UserError, ValueError) as err:  # an unknown mode and the like, from the pipeline
            self._reply(getattr(err, "http_status", 400), {"error": str(err)})
        except Exception as err:  # the client gets one line, the log the rest
            self.log_error("%s failed: %r", self.path, err)
            self._reply(500, {"error": f"the server failed on this request ({type(err).__name__}: {err})."})

    def _refuse_method(self) -> None:
        """Any other method: JSON like every other reply, not http.server's HTML 501 page."""
        self._reply(405, {"error": f"{self.command} is not served; {USAGE}."})

    do_PUT = do_DELETE = do_PATCH = _refuse_method

    def do_HEAD(self):  # noqa: N802
        """GET's status and headers without the body (what a health check or `curl -I` asks for)."""
        self._head = True
        try:
            self.do_GET()
        finally:
            self._head = False

    def do_OPTIONS(self):  # noqa: N802
        self.send_response(204)
        self.send_header("Allow", ALLOW)
        self.end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (an unknown method, a malformed request line, a URL over 64 KiB) as JSON,
        not its HTML error page."""
        self.close_connection = True
        text = message or self.responses.get(code, ("error",))[0]
        self._reply(code, {"error": f"{text}; {USAGE} with a JSON body."})

    def _endpoint(self) -> str:
        """The path without a query string or a trailing slash ("/ask?x=1" is /ask)."""
        return urlsplit(self.path).path.rstrip("/")

    def _reply(self, code: int, payload: dict) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            if code == 405:
                self.send_header("Allow", ALLOW)
            self.end_headers()
            if not getattr(self, "_head", False):
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client hung up: one log line, not a traceback
            self.close_connection = True
            self.log_error("%s: the client went away before the reply", self.path)

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def make_handler(service: Service) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to `service`."""
    return type("BoundHandler", (Handler,), {"service": service})


class APIServer(ThreadingHTTPServer):
    """http.server's threading server with a listen backlog for bursts: its default of 5 reset about half of 100
    clients that connected at once."""

    request_queue_size = 128
    daemon_threads = True


def listen(host: str = "127.0.0.1", port: int = 8765) -> APIServer:
    """Bind the API's address, before any model loads (a port in use was said after the models had loaded);
    warns when the address is reachable from other machines, since the API has no authentication."""
    try:
        server = APIServer((host, port), Handler)
    except OSError as err:  # "no such host" is not the port's fault
        flag = "--host" if isinstance(err, socket.gaierror) else "--port"
        raise UserError(f"cannot listen on {host}:{port} ({err.strerror}); pick another {flag}.") from None
    if not ipaddress.ip_address(server.server_address[0]).is_loopback:
        print(
            f"warning: --host {host} serves the API to other machines, and it has no authentication: anyone who "
            f"can reach port {server.server_address[1]} can read your documents through it. Use --host 127.0.0.1 "
            "unless every machine on this network may.",
            file=sys.stderr,
        )
    return server


def serve(service: Service, server: APIServer) -> None:
    """Answer on `server` (from `listen`) with `service` until interrupted; prints the URL first."""
    server.RequestHandlerClass = make_handler(service)
    host, port = server.server_address[:2]
    print(
        f"serving {service.store_path} at http://{host}:{port} (POST /ask, POST /search, GET /status); Ctrl-C stops",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
