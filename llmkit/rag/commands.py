"""`llmkit rag index|ask|eval|chat`: the RAG command line, over the same functions the app uses."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from llmkit.errors import UserError
from llmkit.rag.abstain import MIN_SCORE, RELATIVE, Gate
from llmkit.rag.chunking import check_chunking
from llmkit.rag.documents import builtin_knowledge_base, folder_prefix, load_paths
from llmkit.rag.embeddings import DEFAULT_EMBEDDING_MODEL, use_query_threads
from llmkit.rag.index import INDEX_KINDS
from llmkit.rag.retrieval import MODES

DEFAULT_STORE = "runs/rag-store"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmkit rag", description="Index documents and ask questions with cited sources."
    )
    sub = parser.add_subparsers(dest="command", required=True)

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
        default="auto",
        choices=INDEX_KINDS,
        help="FAISS index type (auto: flat, or HNSW for large stores)",
    )
    index.add_argument(
        "--chunk_tokens", type=int, default=160, help="chunk size in the embedding model's tokens"
    )
    index.add_argument("--chunk_overlap", type=int, default=32)

    for name, text in (
        ("ask", "answer one question with cited sources"),
        ("chat", "ask questions in the terminal"),
    ):
        p = sub.add_parser(name, help=text)
        if name == "ask":
            p.add_argument("question")
        p.add_argument("--k", type=_positive, default=5, help="sources to retrieve")
        p.add_argument("--mode", default="hybrid", choices=MODES)
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
            "--min_score", type=float, help="abstain below this evidence score (default: calibrated per mode)"
        )
        p.add_argument(
            "--relative_score",
            type=float,
            default=RELATIVE,
            help="cite sources within this share of the best",
        )
        if name == "ask":
            p.add_argument(
                "--json", action="store_true", help="print answer, citations, abstained and sources as JSON"
            )

    ev = sub.add_parser("eval", help="hit@1/5/10, MRR@10 and latency of each retrieval mode")
    ev.add_argument("--qa", required=True, help='JSONL lines of {"question": ..., "doc_id": ...}')
    ev.add_argument("--modes", nargs="*", default=list(MODES), choices=MODES)
    ev.add_argument("--rerank", metavar="CROSS_ENCODER", help="rerank with this cross-encoder (name or path)")
    for p in sub.choices.values():
        p.add_argument(
            "--store", default=DEFAULT_STORE, help=f"the store directory (default {DEFAULT_STORE})"
        )
    return parser


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {number}")
    return number


def main(argv: list[str]) -> None:
    """Dispatch `llmkit rag ...`."""
    args = _parser().parse_args(argv)
    from llmkit.rag.pipeline import RAG, make_generator, open_store
    from llmkit.rag.store import Store

    if args.command == "index":
        if not args.paths and not args.builtin:
            raise UserError("give files or folders to index, or --builtin for the built-in knowledge base.")
        # every flag is checked before the store is touched
        check_chunking(args.chunk_tokens, args.chunk_overlap)
        store = Store(
            args.store,
            embedding_model=args.embedding_model,
            index=args.index,
            chunk_tokens=args.chunk_tokens,
            chunk_overlap=args.chunk_overlap,
        )
        with warnings.catch_warnings(record=True) as skipped:
            warnings.simplefilter("always")
            docs = (
                builtin_knowledge_base()
                if args.builtin
                else load_paths(args.paths, args.include, args.exclude, root=store.anchor)
            )
        for w in skipped:
            print(f"warning: {w.message}", file=sys.stderr)
        # Re-indexing a folder also removes the documents whose files are gone from it.
        folders = {folder_prefix(p, store.anchor) for p in args.paths if Path(p).is_dir()}
        stats = store.add_documents(docs, prune_prefixes=folders, progress=True)
        print(
            json.dumps(
                {
                    **stats,
                    "documents": store.count_documents(),
                    "chunks": len(store),
                    "store": str(store.path),
                },
                indent=2,
            )
        )
        return

    if Path(args.store).is_file():
        raise UserError(
            f"--store {args.store} is a file; pass the store directory built by `llmkit rag index`."
        )
    gate = (
        None
        if args.command == "eval"
        else Gate(args.min_score if args.min_score is not None else dict(MIN_SCORE), args.relative_score)
    )
    store = open_store(args.store)  # the embedding model comes from the store's manifest
    if len(store) == 0:
        raise UserError(
            f"the store {args.store} is empty; add documents with `llmkit rag index PATH --store {args.store}`."
        )
    use_query_threads()
    if args.command == "eval":
        from llmkit.rag.evaluate import evaluate, load_qa
        from llmkit.rag.retrieval import Retriever

        print(
            json.dumps(evaluate(Retriever(store, args.rerank), load_qa(args.qa), tuple(args.modes)), indent=2)
        )
        return

    rag = RAG(
        store,
        make_generator(args.generator, store.embedder, args.generator_model, args.base_url),
        k=args.k,
        mode=args.mode,
        reranker=args.rerank,
        gate=gate,
    )
    filters = {"source": args.source} if args.source else {}
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


def _answer(rag, question: str, filters: dict, as_json: bool = False) -> None:
    shown = ""
    for text, answer in rag.stream(question, **filters):  # noqa: B007 (the last answer is used below)
        if not as_json:
            print(text[len(shown) :], end="", flush=True)
        shown = text
    if as_json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return
    print("\n\nSources:")
    quotes = {c.n: c.sentence for c in answer.citations}
    for n, hit in enumerate(answer.sources, start=1):
        mark = "*" if n in answer.cited else " "
        print(
            f" {mark}[{n}] {hit.source}  (score {hit.score:.3f})  {(quotes.get(n) or ' '.join(hit.text.split()))[:90]}"
        )
