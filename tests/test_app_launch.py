"""Starting an app where it cannot serve: a message naming the port and the fix, not Gradio's OSError traceback."""

import socket

from tests.helpers import llmkit_in_process


def test_a_port_in_use_is_named(capfd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/ here: the classics app opens with the MLP playground only
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = llmkit_in_process(["app", "classic", "--port", str(port)], capfd)
    assert code != 0 and f"cannot serve on 127.0.0.1, port {port}" in err and "--port 0" in err
    assert "Traceback" not in err
