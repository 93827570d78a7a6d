"""`llmkit rag index|remove|ask|chat|eval|serve`: the RAG command line, over the same functions the app uses.

Each subcommand is a function `_add_NAME(sub)` that declares its flags and a handler in HANDLERS;
a new subcommand is one of each (the index and remove handlers live in llmkit.rag.indexing). Flags are
snake_case (dashed spellings still work) and every subcommand takes `--config FILE` (llmkit.tool_cli).
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
from pathlib import Path

from llmkit.arguments import add_config_flag, port_number
from llmkit.errors import UserError
from llmkit.rag import indexing
from llmkit.rag.abstain import RELATIVE, Gate
from llmkit.rag.documents import printable
from llmkit.rag.embeddings import DEFAULT_EMBEDDING_MODEL, use_query_threads
from llmkit.rag.index import INDEX_KINDS
from llmkit.rag.retrieval import MODES
from llmkit.secrets import StreamRedactor, redact
from llmkit.tool_cli import parse_subcommand, plain_warnings, subcommand_parser

DEFAULT_STORE = "runs/rag-store"
DEFAULT_K, DEFAULT_MODE = 5, "hybrid"
SERVE_HELP = (
    "Load the store and models once and answer over HTTP: POST /ask {question, filters?} returns what "
    "`rag ask --json` prints, POST /search the retrieved chunks, GET /status the store and models. It binds "
    "127.0.0.1 (this machine only) by default; the API has no authentication, so bind another address only "
    "on a network you trust."
)


def _add_index(sub) -> None:
    index = sub.add_parser(
        "index", help="add files/folders (or the built-in docs) to a store; re-indexing is incremental"
    )
    index.add_argument("paths", nargs="*", help="files or folders (.txt .md .html .pdf); none with --builtin")
    index.add_argument(
        "--builtin", action="store_true", help="index the built-in knowledge base (CPython's documentation)"
    )
    index.add_argument("--include", nargs="*", help="glob patterns of files to include, e.g. '*.md'")
    index.add_argument("--exclude", nargs="*", help="glob patterns of files to skip")
    index.add_argument(
        "--embedding_model",
        help=f"sentence-transformers model (default {DEFAULT_EMBEDDING_MODEL}; "
        "an existing store keeps the model of its manifest)",
    )
    index.add_argument(
        "--index",
        default=indexing.STORE_SETTINGS["index"],
        choices=INDEX_KINDS,
        help="FAISS index type (auto: flat, or HNSW for large stores)",
    )
    index.add_argument(
        "--chunk_tokens",
        type=int,
        default=indexing.STORE_SETTINGS["chunk_tokens"],
        help="chunk size in the embedding model's tokens (a new store's; an existing one keeps its own)",
    )
    index.add_argument("--chunk_overlap", type=int, default=indexing.STORE_SETTINGS["chunk_overlap"])


def _add_remove(sub) -> None:
    remove = sub.add_parser("remove", help="remove documents from a store, by the path indexed or by id")
    remove.add_argument(
        "targets", nargs="+", help="files or folders as indexed (they may be gone), or document ids"
    )


def _add_ask_and_chat(sub) -> None:
    for name, text in (
        ("ask", "answer one question with cited sources"),
        ("chat", "ask questions in the terminal"),
        ("serve", "keep the models loaded and answer over HTTP (JSON API, local only by default)"),
    ):
        p = sub.add_parser(name, help=text, description=SERVE_HELP if name == "serve" else None)
        if name == "ask":
            p.add_argument("question")
            p.add_argument(
                "--server",
                metavar="URL",
                help="ask a running `llmkit rag serve` (e.g. http://127.0.0.1:8765): no model is loaded here",
            )
        if name == "serve":
            p.add_argument(
                "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
            )
            p.add_argument(
                "--port", type=port_number, default=8765, help="port to listen on (0: any free port)"
            )
        # `ask` leaves them unset, so that with --server a question without them gets the server's own
        p.add_argument(
            "--k",
            type=positive_int,
            default=None if name == "ask" else DEFAULT_K,
            help=f"sources to retrieve (default {DEFAULT_K}; with --server, the server's --k)",
        )
        p.add_argument(
            "--mode",
            default=None if name == "ask" else DEFAULT_MODE,
            choices=MODES,
            help=f"retrieval mode (default {DEFAULT_MODE}; with --server, the server's --mode)",
        )
        p.add_argument("--source", help="only search chunks whose source path matches this glob")
        p.add_argument(
            "--rerank", metavar="CROSS_ENCODER", help="rerank with this cross-encoder (name or path)"
        )
        p.add_argument("--generator", default="extractive", choices=["extractive", "transformers", "openai"])
        p.add_argument("--generator_model", help="model folder/name (transformers) or model id (openai)")
        p.add_argument(
            "--base_url",
            help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (key from OPENAI_API_KEY)",
        )
        p.add_argument(
            "--min_score",
            type=cosine_flag,
            help="abstain below this evidence score (default: the store's own, calibrated when it was indexed)",
        )
        p.add_argument(
            "--relative_score",
            type=finite_number,
            default=RELATIVE,
            help="cite sources within this share of the best",
        )
        p.add_argument(
            "--reader",
            metavar="DIR_OR_NAME",
            help="an extractive QA model (a `llmkit finetune-qa` output): abstain when it reads no answer in "
            "the kept sources",
        )
        p.add_argument(
            "--reader_threshold",
            type=finite_number,
            help="the reader answers when its best span beats its 'no answer' score by more than this; lower "
            "answers more, higher abstains more (default: the threshold in the reader's metrics.json, else 0)",
        )
        if name == "ask":
            p.add_argument(
                "--json", action="store_true", help="print answer, citations, abstained and sources as JSON"
            )


def _add_eval(sub) -> None:
    ev = sub.add_parser("eval", help="hit@1/5/10, MRR@10 and latency of each retrieval mode")
    ev.add_argument("--qa", required=True, help='JSONL lines of {"question": ..., "doc_id": ...}')
    ev.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ev.add_argument("--rerank", metavar="CROSS_ENCODER", help="rerank with this cross-encoder (name or path)")


def _parser() -> argparse.ArgumentParser:
    parser, sub = subcommand_parser("llmkit rag", "Index documents and ask questions with cited sources.")
    for add in (_add_index, _add_remove, _add_ask_and_chat, _add_eval):
        add(sub)
    for p in sub.choices.values():
        p.add_argument(
            "--store", default=DEFAULT_STORE, help=f"the store directory (default {DEFAULT_STORE})"
        )
        add_config_flag(p)
    return parser


def finite_number(value: str) -> float:
    number = float(value)
    if not math.isfinite(number):  # nan compares false with every score: the gate or reader would never act
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value}")
    return number


# What a Ctrl-C leaves behind, by subcommand (a bare one printed the pretraining recipe's "checkpoints ... kept").
READ_ONLY = "stopped; the store was only read."
INTERRUPTED = {
    "index": "the documents committed before Ctrl-C are in the store; run the same command to index the rest.",
    "remove": "stopped; each removal is one transaction, done whole or not at all: run the same command again.",
}


def cosine_flag(value: str) -> float:
    """A --min_score: the gate compares it with cosines (its refusal named "abstention threshold dense=-5.0")."""
    number = finite_number(value)
    if not -1 <= number <= 1:
        raise argparse.ArgumentTypeError(f"must be a cosine in [-1, 1] (-1 answers everything), got {value}")
    return number


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {number}")
    return number


def main(argv: list[str]) -> None:
    """Dispatch `llmkit rag ...`."""
    args = parse_subcommand(_parser(), argv)
    with plain_warnings():
        try:
            HANDLERS[args.command](args)
        except KeyboardInterrupt as err:  # a bare Ctrl-C was told "checkpoints already saved are kept"
            raise KeyboardInterrupt(str(err) or INTERRUPTED.get(args.command, READ_ONLY)) from None
        except sqlite3.DatabaseError as err:  # damaged past its header, or locked by another writer
            from llmkit.rag.layout import database_problem

            raise database_problem(Path(args.store), err) from None


# -- ask, chat and eval ---------------------------------------------------------------------------
def _open_for_questions(args: argparse.Namespace):
    from llmkit.rag.pipeline import open_store

    if Path(args.store).is_file():
        raise UserError(
            f"--store {args.store} is a file; pass the store directory built by `llmkit rag index`."
        )
    store = open_store(args.store)  # the embedding model comes from the store's manifest
    if len(store) == 0:
        from llmkit.rag.layout import empty_store

        raise UserError(empty_store(args.store))
    use_query_threads()
    return store


def _eval(args: argparse.Namespace) -> None:
    from llmkit.rag.evaluate import check_doc_ids, evaluate, load_qa
    from llmkit.rag.retrieval import Retriever

    store = _open_for_questions(args)
    qa = load_qa(args.qa)
    check_doc_ids(qa, set(store.sources()), args.qa)
    print(json.dumps(evaluate(Retriever(store, args.rerank), qa, tuple(args.modes)), indent=2))


def _reader(args: argparse.Namespace):
    if not args.reader:
        if args.reader_threshold is not None:
            raise UserError("--reader_threshold applies to a reader; pass --reader DIR_OR_NAME too.")
        return None
    from llmkit.rag.reader import Reader

    return Reader(args.reader, threshold=args.reader_threshold)


def _pipeline(args: argparse.Namespace):
    """The RAG pipeline the flags describe, and the source filter for its questions."""
    from llmkit.rag.pipeline import RAG, make_generator

    gate = Gate(args.min_score, args.relative_score)  # None: the store's calibrated thresholds
    store = _open_for_questions(args)
    generator = make_generator(args.generator, store.embedder, args.generator_model, args.base_url)
    rag = RAG(
        store,
        generator,
        k=args.k or DEFAULT_K,
        mode=args.mode or DEFAULT_MODE,
        reranker=args.rerank,
        gate=gate,
        reader=_reader(args),
    )
    problem = args.source and rag.retriever.filter_problem(source=args.source)
    if problem:  # it answered "The documents hold nothing about that" with exit 0
        raise UserError(f"--source: {problem}")
    return rag, ({"source": args.source} if args.source else {})


def _ask_or_chat(args: argparse.Namespace) -> None:
    if args.command == "ask":
        _check_question(args.question)  # before any model loads: a refusal printed as an answer exited 0
    if getattr(args, "server", None):
        _ask_server(args)
        return
    rag, filters = _pipeline(args)
    if args.command == "ask":
        _answer(rag, args.question, filters, as_json=args.json)
        return
    print("Ask a question about the documents (empty line or Ctrl-D to quit).")
    while True:
        try:
            question = input("\n> ").strip()
        except EOFError:
            break
        if not question:
            break
        _answer(rag, question, filters)


def _check_question(question: str) -> None:
    """Refuse an empty or over-long question of `rag ask` (the chat and the API reply to it instead)."""
    from llmkit.rag.serve import MAX_QUESTION_CHARS
    from llmkit.sentences import is_text

    if not question.strip():
        raise UserError('the question is empty; ask one, e.g. llmkit rag ask "How do I rebase?" --store S.')
    if not is_text(question):  # a non-UTF-8 terminal's bytes: a TypeError traceback from the tokenizer
        raise UserError(
            "the question holds bytes that are not UTF-8 text; set the terminal to UTF-8 (e.g. LANG=C.UTF-8) "
            "and type it again."
        )
    if len(question) > MAX_QUESTION_CHARS:
        raise UserError(
            f"the question is {len(question):,} characters long; keep it under {MAX_QUESTION_CHARS:,} "
            "(ask about one thing; --source narrows the documents searched)."
        )


def _answer(rag, question: str, filters: dict, as_json: bool = False) -> None:
    """Stream the answer, then its sources; token-shaped strings of the documents never reach the screen."""
    shown = StreamRedactor()
    text = ""
    for text, answer in rag.stream(question, **filters):  # noqa: B007 (the last answer is used below)
        if not as_json:
            print(shown.update(text), end="", flush=True)
    if as_json:
        print(json.dumps(redact(answer.to_dict()), indent=2, ensure_ascii=False))
        return
    print(shown.update(text, final=True))
    _print_sources(redact(answer.to_dict()))


def _print_sources(result: dict) -> None:
    """The "Sources:" block under an answer, from its JSON form (a local answer or a server's)."""
    if result["sources"] == []:  # a question the chat refused ("That question is 2,999 characters long")
        return  # (a server's null is no answer of llmkit's: it fails below, and is named)
    print("\nSources:")
    quotes = {c["n"]: c["sentence"] for c in result["citations"]}
    below = 0
    for s in result["sources"]:
        if not s.get("relevant", True):
            below += 1  # retrieved, but below the relevance cut: not worth a line
            continue
        mark = "*" if s["n"] in quotes else " "
        where = printable(s["source"]) + (f", {s['page']}" if s.get("page") else "")
        quote = (quotes.get(s["n"]) or " ".join(s["text"].split()))[:90]
        print(redact(f" {mark}[{s['n']}] {where}  (score {s['score']:.3f})  {quote}"))
    if below:
        print(f"  ({below} more retrieved below the relevance cut; --json lists every source)")


# flags of `rag ask` that only a local pipeline uses (--k, --mode and --source travel with the question)
LOCAL_ONLY = (
    "store",
    "rerank",
    "generator",
    "generator_model",
    "base_url",
    "min_score",
    "relative_score",
    "reader",
    "reader_threshold",
)


def _ask_server(args: argparse.Namespace) -> None:
    """`rag ask --server URL`: the question goes to a running `rag serve`; nothing heavy is imported here."""
    from llmkit.rag.client import ask_server

    defaults = vars(_parser().parse_args(["ask", "?"]))
    ignored = [f"--{name}" for name in LOCAL_ONLY if getattr(args, name) != defaults[name]]
    if ignored:  # they were silently ignored: a --min_score or --store that did nothing
        raise UserError(
            f"{', '.join(ignored)} cannot apply with --server: the server answers with the store, models and "
            "thresholds it was started with; pass them to `llmkit rag serve`, or drop --server to ask here."
        )
    filters = {"source": args.source} if args.source else {}
    # --k and --mode go only when given: the client's defaults overrode the server's own --k and --mode
    given = {key: value for key, value in (("k", args.k), ("mode", args.mode)) if value is not None}
    result = ask_server(args.server, {"question": args.question, "filters": filters, **given})
    if args.json:
        print(json.dumps(redact(result), indent=2, ensure_ascii=False))
        return
    try:
        print(redact(str(result["answer"])))
        _print_sources(result)
    except (KeyError, TypeError, AttributeError, ValueError) as err:  # JSON of the right keys, wrong shapes
        raise UserError(
            f"the server at {args.server} did not answer as llmkit's API does ({type(err).__name__}: {err}); "
            f"is {args.server} a `llmkit rag serve`?"
        ) from None


def _serve(args: argparse.Namespace) -> None:
    from llmkit.rag.serve import Service, listen, serve

    server = listen(args.host, args.port)  # first: a port in use is said before minutes of model loading
    try:
        rag, filters = _pipeline(args)
    except BaseException:
        server.server_close()
        raise
    serve(Service(rag, str(args.store), filters), server)


HANDLERS = {
    "index": indexing.index,
    "remove": indexing.remove,
    "ask": _ask_or_chat,
    "chat": _ask_or_chat,
    "eval": _eval,
    "serve": _serve,
}
