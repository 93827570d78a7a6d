"""A stand-in for the Hugging Face Hub's HTTP API (the Hub cannot be reached from tests): it records each request."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    """Serves create-repo, preupload, validate-yaml, commit and secrets; `fail_commits` makes commits fail.

    `echo_credentials` makes commits fail with an error that quotes the Authorization header, and
    `echo_secrets` makes setting a Space secret fail quoting its value, the way a careless proxy might,
    to prove that llmkit masks whatever a server sends back.
    """

    def __init__(
        self, fail_commits: bool = False, echo_credentials: bool = False, echo_secrets: bool = False
    ):
        self.requests: list[dict] = []
        self.fail_commits = fail_commits
        self.echo_credentials = echo_credentials
        self.echo_secrets = echo_secrets
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> bytes:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                hub.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "body": raw,
                    }
                )
                return raw

            def do_GET(self):
                self._record()
                self._reply(
                    200, {"name": "tester", "type": "user", "auth": {"accessToken": {"role": "write"}}}
                )

            def do_POST(self):
                raw = self._record()
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    repo = json.loads(raw)
                    self._reply(
                        200,
                        {
                            "url": f"http://{self.headers['Host']}/spaces/{repo.get('organization') or 'tester'}/{repo['name']}"
                        },
                    )
                elif path.endswith("/preupload/main"):
                    files = json.loads(raw)["files"]
                    self._reply(
                        200,
                        {
                            "files": [
                                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                for f in files
                            ]
                        },
                    )
                elif path == "/api/validate-yaml":
                    self._reply(200, {"errors": [], "warnings": []})
                elif "/commit/" in path and hub.echo_credentials:
                    self._reply(
                        401,
                        {
                            "error": f"Invalid credentials in Authorization header: {self.headers.get('Authorization')}"
                        },
                    )
                elif "/commit/" in path:
                    if hub.fail_commits:
                        # 4xx: not retried
                        self._reply(403, {"error": "You have no write access to this Space"})
                    else:
                        repo = path.split("/api/spaces/")[1].split("/commit/")[0]
                        url = f"http://{self.headers['Host']}/spaces/{repo}/commit/{'a' * 40}"
                        self._reply(200, {"commitUrl": url, "commitOid": "a" * 40, "pullRequestUrl": None})
                elif path.endswith("/secrets") and hub.echo_secrets:
                    self._reply(400, {"error": f"Secret value rejected: {json.loads(raw)['value']}"})
                elif path.endswith("/secrets"):
                    self._reply(200, {})
                else:
                    self._reply(404, {"error": f"unknown route {path}"})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
