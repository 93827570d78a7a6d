"""Start an app's server from the command line: a port or address it cannot take is a message, not a traceback."""

from __future__ import annotations

import gradio as gr

from llmkit.errors import UserError


def launch_app(demo: gr.Blocks, host: str, port: int | None, **kwargs) -> None:
    """demo.launch on host:port (None: the first free port from 7860 up), blocking until the app is stopped."""
    try:
        demo.launch(server_name=host, server_port=port, **kwargs)
    except OSError as err:
        # Gradio says "Cannot find empty port in range: 7861-7861" and names its own launch() parameters
        if "empty port" not in str(err):
            raise
        where = f"port {port}" if port else "a free port from 7860 up"
        raise UserError(
            f"cannot serve on {host}, {where}: another program (another app?) uses the port, or {host} is not an "
            "address of this machine. Pass --port 0 for a free port, or another --port / --host."
        ) from None
