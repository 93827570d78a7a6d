"""Chat with your documents, answered with cited sources (the built-in knowledge base by default).

`llmkit app rag-chat` anywhere, or `python apps/rag_chat.py` in a clone:

python apps/rag_chat.py                                  # CPython's docs, extractive answers, offline
python apps/rag_chat.py --store runs/my-store            # a store built with `llmkit rag index`
python apps/rag_chat.py --generator openai --base_url http://localhost:8000/v1 --generator_model my-model
"""

import argparse
from pathlib import Path

from llmkit.arguments import port_number
from llmkit.errors import UserError, run_cli
from llmkit.rag.commands import cosine_flag, finite_number, positive_int


def _check_port(host: str, port: int) -> None:
    """Refuse a port in use before the models load (and the built-in store's first build, minutes): it was said
    only once all that was done."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the app's server binds
            probe.bind((host, port))
    except OSError as err:
        raise UserError(
            f"cannot serve on {host}, port {port} ({err.strerror}): another program (another app?) uses the port, "
            f"or {host} is not an address of this machine. Pass --port 0 for a free port, or another --port / --host."
        ) from None


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument(
        "--store", default="runs/rag-builtin", help="store directory (built from the built-in docs if empty)"
    )
    parser.add_argument("--generator", default="extractive", choices=["extractive", "transformers", "openai"])
    parser.add_argument("--generator_model", help="model folder/name (transformers) or model id (openai)")
    parser.add_argument("--base_url", help="OpenAI-compatible endpoint (key from OPENAI_API_KEY)")
    # the checks of `rag ask`: --reader_threshold nan was taken, and the reader never abstained (inf: never answered)
    parser.add_argument("--k", type=positive_int, default=5)
    parser.add_argument("--mode", default="hybrid", choices=["dense", "lexical", "hybrid"])
    parser.add_argument(
        "--min_score",
        type=cosine_flag,
        help="abstain below this evidence score (default: calibrated per mode)",
    )
    parser.add_argument(
        "--reader",
        help="an extractive QA model (`llmkit finetune-qa` output): abstain when it reads no answer",
    )
    parser.add_argument(
        "--reader_threshold",
        type=finite_number,
        help="the reader answers above this margin over 'no answer' (default: its metrics.json's, else 0)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port_number, default=7860, help="0: a free port from 7860 up")
    parser.add_argument("--share", action="store_true", help="also open a public Gradio link")
    args = parser.parse_args(argv)

    if args.reader_threshold is not None and not args.reader:  # was silently ignored (`rag ask` refuses it)
        raise UserError("--reader_threshold applies to a reader; pass --reader DIR_OR_NAME too.")
    if args.port:
        _check_port(args.host, args.port)
    from llmkit.rag.abstain import Gate
    from llmkit.rag.pipeline import RAG, make_generator, open_store
    from llmkit.rag.reader import Reader
    from llmkit.tool_cli import plain_warnings
    from llmkit.ui.launch import launch_app
    from llmkit.ui.rag_chat import build_rag_chat

    gate = Gate(args.min_score)  # None: the store's calibrated thresholds
    builtin = args.store == parser.get_default("store")
    if Path(args.store).is_file():
        raise UserError(
            f"--store {args.store} is a file; pass the store directory built by `llmkit rag index`."
        )
    # e.g. the offline fallback to the packaged MiniLM: a `note:` line, not a UserWarning with its source line
    with plain_warnings():
        store = open_store(args.store, builtin=builtin)  # the embedding model comes from the store's manifest
        rag = RAG(
            store,
            make_generator(args.generator, store.embedder, args.generator_model, args.base_url),
            k=args.k,
            mode=args.mode,
            gate=gate,
            reader=Reader(args.reader, threshold=args.reader_threshold) if args.reader else None,
        )
    demo = build_rag_chat(rag)
    launch_app(demo.queue(default_concurrency_limit=4), args.host, args.port or None, share=args.share)


if __name__ == "__main__":
    run_cli(main)
