"""The client of `llmkit rag serve`: `llmkit rag ask --server URL` and other programs post questions to a
running server. Standard library only, so a question asked through a server loads no model."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from llmkit.errors import UserError


def server_url(url: str) -> str:
    """The base URL of a `rag serve` given as --server; UserError naming what is wrong with it.

    A pasted endpoint URL (http://host:8765/ask) names its server, and the scheme's case does not matter: both
    were refused with a 404 or "not an http:// URL". A bad port or host was a traceback.
    """
    example = "e.g. --server http://127.0.0.1:8765"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number in 0-65535)
    except ValueError as err:
        raise UserError(f"--server {url} is not a valid URL ({err}); {example}.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UserError(f"--server {url} is not an http:// URL; {example}.")
    if not parts.hostname or any(c.isspace() or not c.isprintable() for c in parts.netloc):
        raise UserError(f"--server {url} names no valid host; {example}.")
    path = re.sub(r"/(ask|search|status)?/?$", "", parts.path)
    return f"{parts.scheme.lower()}://{parts.netloc}{path}"


def ask_server(url: str, payload: dict, *, endpoint: str = "ask", timeout: float = 300.0) -> dict:
    """POST a question to a running `llmkit rag serve`; UserError if it cannot be reached or refuses it."""
    target = server_url(url) + "/" + endpoint
    data = json.dumps(payload).encode()
    request = urllib.request.Request(target, data=data, headers={"Content-Type": "application/json"})
    not_llmkit = (
        f"; is {url} a `llmkit rag serve`? Its URL is printed when it starts (e.g. http://127.0.0.1:8765)."
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as err:
        try:
            message = json.loads(err.read()).get("error", err.reason)
        except (ValueError, AttributeError):
            message = f"{err.reason}{not_llmkit}"  # an error page, not the API's JSON
        raise UserError(f"the server at {url} refused the question (HTTP {err.code}): {message}") from None
    except TimeoutError:  # connected, asked, and no reply: it was called unreachable and told to start one
        raise UserError(
            f"the server at {url} took the question but did not answer within {timeout:g} s (busy with a queue "
            "of questions or a slow generator, or stuck); try again, or restart it."
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as err:  # ValueError: http.client's InvalidURL
        reason = getattr(err, "reason", err)
        raise UserError(
            f"cannot reach the llmkit rag server at {url} ({reason}); start one with `llmkit rag serve --store S`."
        ) from None
    # Another web server can answer 200 with a page, or JSON of another shape: the CLI would crash reading it.
    try:
        result = json.loads(body)
    except ValueError:
        result = None
    expected = ("answer", "citations", "sources") if endpoint == "ask" else ("hits",)
    if not isinstance(result, dict) or not set(expected) <= set(result):
        raise UserError(
            f"the server at {url} did not answer as llmkit's API does (no {', '.join(expected)}){not_llmkit}"
        )
    return result
