"""Twelve document collections for the RAG benchmark, with in-collection questions for each.

    prose    benchmarks/rag_bench/docs: ten short documents written for the benchmark (40 answerable
             questions, 30 the documents cannot answer)
    pydoc    a slice of the language reference CPython ships (pydoc_data.topics), read at run time
    sklearn  the dataset descriptions scikit-learn ships (sklearn/datasets/descr/*.rst), read at run time
    stdlib   API docstrings of fifteen standard-library modules (the module's, then each public
             function's and class's with its signature), read at run time with `inspect`. HELD OUT:
             added before the answer-sentence selection was reworked and measured only before and
             after it, never used to tune it; then looked at, and used for the second round (see HELD_OUT)
    readme   the README (package description) of ten installed packages, from their metadata at run
             time. HELD OUT for the second round of the quoted-unit work
    numpy    the docstrings of twelve numpy.linalg functions (signature, then the docstring up to its
             examples), read at run time with `inspect`. HELD OUT for the off-collection abstention
             work: measured before it and once after it, never used to tune it
    idle     the IDLE manual CPython ships (idlelib/help.html), parsed to plain text, its sections packed into
             twelve documents (one a chapter, or part of one). HELD OUT: written before the second rework of
             the evidence gate and the answer sentence, to check that the change transfers
    torch    the docstrings of twelve torch APIs (signature, then the docstring without its example
             sessions), read at run time with `inspect`. HELD OUT, like idle
    hfhub    the docstrings of twelve huggingface_hub download, login, cache and repository APIs (signature, then
             the docstring without its fenced code blocks), read at run time with `inspect`. HELD OUT: added before
             the third round of the quoted-unit and gate work, never looked at while tuning it
    networkx the narrative module docstrings of fifteen networkx modules (d-separation, VF2 and ISMAGS matching,
             graph views, summarization, tree conventions, bipartite graphs, GML/GraphML, TSP...), without their
             doctest sessions, read at run time with `inspect`. HELD OUT, like hfhub
    pandas   the docstrings of fourteen pandas APIs (read_csv, merge, concat, pivot_table, groupby, rolling,
             to_datetime, cut...: signature, then the docstring without its Examples section), read at run time
             with `inspect`. HELD OUT: added on 2026-12-06, questions written without looking at the RAG code
    sqlalchemy the narrative module docstrings of twelve SQLAlchemy modules (the pysqlite, aiosqlite, psycopg2,
             asyncpg and pyodbc dialects, the mutable, orderinglist, indexable, serializer, compiler and automap
             extensions, ORM collections), without their code blocks and doctest sessions, read at run time with
             `inspect`. HELD OUT, like pandas

The pydoc, sklearn, stdlib, readme, numpy, idle, torch, hfhub, networkx, pandas and sqlalchemy texts are read from
the installed packages when the benchmark runs (the idle, torch, hfhub, networkx, pandas and sqlalchemy
loaders live in rag_collections_more.py); only the questions (benchmarks/rag_collections/*.jsonl, each with the document and a
phrase of the answer) live in this repository. A collection's off-collection questions are the other collections'
answerable questions.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
from rag_collections_more import (
    hfhub_documents,
    idle_documents,
    networkx_documents,
    pandas_documents,
    sqlalchemy_documents,
    torch_documents,
)

from llmkit.rag import RAG, Document, Store
from llmkit.rag.abstain import MIN_SCORE
from llmkit.rag.calibration import ensure_calibrated
from llmkit.rag.documents import load_paths

HERE = Path(__file__).resolve().parent
# Language-reference topics of pydoc_data: statements, literals, operators and a few object types.
PYDOC_TOPICS = (
    "assert assignment augassign async await binary bitwise bltin-ellipsis-object bltin-null-object booleans break "
    "class comparisons context-managers continue conversions del dict dynamic-features exceptions execmodel for "
    "function global id-classes if imaginary import in integers lambda lists naming nonlocal numbers pass power "
    "raise return shifting slicings specialattrs subscriptions truth try typesfunctions typesmethods typesmodules "
    "unary while with yield"
).split()


def prose_documents() -> list[Document]:
    """The written documents of benchmarks/rag_bench/docs."""
    folder = HERE / "rag_bench" / "docs"
    return load_paths([folder], root=folder)


def pydoc_documents() -> list[Document]:
    """A slice of CPython's language reference, as the interpreter running this ships it."""
    from pydoc_data.topics import topics

    return [
        Document(f"pydoc/{t}", topics[t], {"source": f"pydoc_data.topics:{t}", "title": t})
        for t in PYDOC_TOPICS
        if t in topics
    ]


def sklearn_documents() -> list[Document]:
    """The dataset descriptions (DESCR) of the installed scikit-learn."""
    from importlib.resources import files

    folder = files("sklearn.datasets.descr")
    return [
        Document(f"sklearn/{f.name}", f.read_text(encoding="utf-8"), {"source": f"sklearn:{f.name}"})
        for f in sorted(folder.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".rst")
    ]


STDLIB_MODULES = (
    "base64 copy csv difflib fnmatch functools heapq json random secrets shutil statistics string tempfile textwrap"
).split()
README_PACKAGES = (
    "colorama colorlog defusedxml dill h11 portalocker pytz semantic-version threadpoolctl xxhash".split()
)
# Collections never looked at while tuning. stdlib was held out for the first round of the quoted-unit work and
# looked at after it (its misses then guided the second round); readme was added, and held out, for the second.
# numpy was added, and held out, for the off-collection abstention work (tuned on the other five).
# idle and torch were added, and held out, before the second rework of the gate and the answer sentence.
# hfhub and networkx were added held out on 2026-12-06, before the third round of the quoted-unit and gate work;
# readme, numpy, idle and torch were looked at during that round. Only hfhub and networkx are unseen: their
# aggregate figures were read (before and after the third round), not their questions or misses.
# pandas and sqlalchemy were added held out on 2026-12-06 (pandas 3.1.1, SQLAlchemy 2.1.9), their questions written
# by someone who had not read the ranking and abstention code nor any results.
HELD_OUT = frozenset({"hfhub", "networkx", "pandas", "sqlalchemy"})
NUMPY_LINALG = "cholesky det eig inv lstsq matrix_power matrix_rank pinv qr slogdet solve svd".split()


def stdlib_documents() -> list[Document]:
    """One API reference page per module of STDLIB_MODULES, from the docstrings of this interpreter."""
    import importlib
    import inspect

    docs = []
    for name in STDLIB_MODULES:
        module = importlib.import_module(name)
        parts = [inspect.getdoc(module) or ""]
        for attr in sorted(getattr(module, "__all__", ())):
            obj = getattr(module, attr, None)
            doc = inspect.getdoc(obj) if callable(obj) else None
            if not doc:
                continue
            try:
                signature = str(inspect.signature(obj))
            except (TypeError, ValueError):  # some builtins have none
                signature = "(...)"
            # a default's repr may hold its address ("<function copy2 at 0x7f..>"): drop it, the text stays stable
            parts.append(f"{attr}{re.sub(r' at 0x[0-9a-f]+', '', signature)}\n\n{doc}")
        docs.append(
            Document(f"stdlib/{name}", "\n\n".join(parts), {"source": f"inspect:{name}", "title": name})
        )
    return docs


def readme_documents() -> list[Document]:
    """The project descriptions (README) of README_PACKAGES, as their installed metadata holds them."""
    from importlib.metadata import metadata

    docs = []
    for name in README_PACKAGES:
        meta = metadata(name)
        text = meta.get_payload() or meta.get("Description") or ""
        docs.append(Document(f"readme/{name}", text, {"source": f"metadata:{name}", "title": name}))
    return docs


def numpy_documents() -> list[Document]:
    """One page per function of NUMPY_LINALG: its signature and docstring, up to the examples."""
    import inspect

    import numpy.linalg

    docs = []
    for name in NUMPY_LINALG:
        function = getattr(numpy.linalg, name)
        doc = inspect.getdoc(function) or ""
        doc = doc.split("\nExamples\n--------")[0]  # doctest sessions are code, not prose to quote
        try:
            signature = str(inspect.signature(function))
        except (TypeError, ValueError):
            signature = "(...)"
        text = f"numpy.linalg.{name}{signature}\n\n{doc}"
        docs.append(
            Document(f"numpy/{name}", text, {"source": f"inspect:numpy.linalg.{name}", "title": name})
        )
    return docs


def read_questions(path: Path) -> list[dict]:
    """JSONL rows of {"question", "doc_id", "answer"} (or "answerable": false)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


COLLECTIONS = {
    "prose": (prose_documents, HERE / "rag_bench" / "questions.jsonl"),
    "pydoc": (pydoc_documents, HERE / "rag_collections" / "pydoc_questions.jsonl"),
    "sklearn": (sklearn_documents, HERE / "rag_collections" / "sklearn_questions.jsonl"),
    "stdlib": (stdlib_documents, HERE / "rag_collections" / "stdlib_questions.jsonl"),
    "readme": (readme_documents, HERE / "rag_collections" / "readme_questions.jsonl"),
    "numpy": (numpy_documents, HERE / "rag_collections" / "numpy_questions.jsonl"),
    "idle": (idle_documents, HERE / "rag_collections" / "idle_questions.jsonl"),
    "torch": (torch_documents, HERE / "rag_collections" / "torch_questions.jsonl"),
    "hfhub": (hfhub_documents, HERE / "rag_collections" / "hfhub_questions.jsonl"),
    "networkx": (networkx_documents, HERE / "rag_collections" / "networkx_questions.jsonl"),
    "pandas": (pandas_documents, HERE / "rag_collections" / "pandas_questions.jsonl"),
    "sqlalchemy": (sqlalchemy_documents, HERE / "rag_collections" / "sqlalchemy_questions.jsonl"),
}


def check_questions(name: str, docs: list[Document], rows: list[dict]) -> list[str]:
    """Questions whose answer phrase is not in their document (a typo, or the installed text changed)."""
    texts = {Path(d.id).name: " ".join(d.text.split()).lower() for d in docs}
    return [
        f"{name}: {r['question']!r}: {r['answer']!r} not in {r['doc_id']}"
        for r in rows
        if r.get("answerable", True) and r["answer"].lower() not in texts.get(r["doc_id"], "")
    ]


def open_collection(name: str, cache: Path, embedder=None) -> tuple[Store, list[dict]]:
    """The collection's store (built once under `cache`, re-indexed incrementally) and its questions."""
    load, questions = COLLECTIONS[name]
    docs = load()
    rows = read_questions(questions)
    problems = check_questions(name, docs, rows)
    if problems:
        raise SystemExit("\n".join(problems))
    store = Store(cache / name, embedder=embedder)
    store.add_documents(docs, prune_prefixes={""} if name == "prose" else None)
    return store, rows


NONSENSE = ["%_%", "asdf qwer", "zxcv qwop?", "???", "lorem ipsum dolor"]


def _ask_all(rag, rows: list[dict], mode: str) -> list[dict]:
    """Per question: abstained, evidence score, the first cited sentence, the source documents' ranks."""
    out = []
    for r in rows:
        t = time.perf_counter()
        answer = rag.ask(r["question"], mode=mode)
        ms = (time.perf_counter() - t) * 1000
        hits, _ = rag.retriever.retrieve(r["question"], 10, mode)
        docs = list(dict.fromkeys(Path(h.doc_id).name for h in hits))
        out.append(
            {
                "abstained": answer.abstained,
                "score": answer.evidence.score if answer.evidence else 0.0,
                "first": answer.citations[0].sentence if answer.citations else "",
                "rank": docs.index(r["doc_id"]) + 1 if r.get("doc_id") in docs else None,
                "ms": ms,
            }
        )
    return out


def collection_report(
    name: str, store, questions: dict[str, list[dict]], mode: str = "hybrid", reader=None
) -> dict:
    """Default settings (the store's calibrated threshold, extractive answers, `reader` if given) on in- and
    off-collection questions."""
    calibration = ensure_calibrated(store)
    rag = RAG(store, k=5, mode=mode, reader=reader)
    own = questions[name]
    answerable = [r for r in own if r.get("answerable", True)]
    unanswerable = [r for r in own if not r.get("answerable", True)]
    off = [r for other, rows in questions.items() if other != name for r in rows if r.get("answerable", True)]
    a, u, o = _ask_all(rag, answerable, mode), _ask_all(rag, unanswerable, mode), _ask_all(rag, off, mode)
    nonsense = [rag.ask(q, mode=mode).abstained for q in NONSENSE]
    answered = [(r, x) for r, x in zip(answerable, a) if not x["abstained"]]
    fixed = MIN_SCORE[mode]

    def rate(xs, test):
        return round(sum(map(test, xs)) / len(xs), 3) if xs else None

    return {
        "documents": store.count_documents(),
        "chunks": len(store),
        "questions": {"answerable": len(a), "unanswerable": len(u), "off_collection": len(o)},
        "threshold": calibration["min_score"][mode],
        "calibration": calibration["modes"][mode],
        "hit@1": rate(a, lambda x: x["rank"] == 1),
        "hit@10": rate(a, lambda x: x["rank"] is not None),
        "answerable_answered": rate(a, lambda x: not x["abstained"]),
        "off_collection_abstained": rate(o, lambda x: x["abstained"]),
        "unanswerable_abstained": rate(u, lambda x: x["abstained"]),
        "nonsense_abstained": rate(nonsense, bool),
        "first_citation_contains_answer": rate(
            answered,
            lambda p: " ".join(p[0]["answer"].lower().split()) in " ".join(p[1]["first"].lower().split()),
        ),
        # a longer quote holds the answer more often: how long the quoted unit is, for comparison
        "first_citation_words_mean": round(float(np.mean([len(x["first"].split()) for _, x in answered])), 1)
        if answered
        else None,
        f"with_fixed_threshold_{fixed}": {
            "answerable_answered": rate(a, lambda x: x["score"] >= fixed),
            "off_collection_abstained": rate(o, lambda x: x["score"] < fixed),
        },
        "ask_ms_p50": round(float(np.percentile([x["ms"] for x in a + o], 50)), 1),
    }


def collections_benchmark(cache: Path, mode: str = "hybrid", reader=None, names=None) -> dict:
    """collection_report for every collection, or those `names` (stores cached under `cache`).

    Off-collection questions come from the collections asked, so figures are comparable only
    between runs over the same ones."""
    stores, questions, embedder = {}, {}, None
    for name in names or COLLECTIONS:
        stores[name], questions[name] = open_collection(name, cache, embedder)
        embedder = stores[name].embedder
    results = {}
    for name, store in stores.items():
        results[name] = collection_report(name, store, questions, mode, reader)
        print(name, json.dumps(results[name]), flush=True)
    return results


def near_domain_benchmark(cache: Path, mode: str = "hybrid") -> dict:
    """The hard case: half of a collection's documents indexed, questions about the other half.

    The off-collection questions are then on the store's own subject (another dataset, another
    statement), as when half of an encyclopedia is indexed. Reported with the store's fitted
    threshold and with the old fixed one.
    """
    results, embedder = {}, None
    for name in ("pydoc", "sklearn"):
        load, questions = COLLECTIONS[name]
        docs, rows = load(), read_questions(questions)
        names = sorted(Path(d.id).name for d in docs)
        halves = (set(names[0::2]), set(names[1::2]))
        for i, half in enumerate(halves):
            store = Store(cache / f"{name}-half{i}", embedder=embedder)
            embedder = store.embedder
            store.add_documents([d for d in docs if Path(d.id).name in half])
            calibration = ensure_calibrated(store)
            rag = RAG(store, k=5, mode=mode)
            inside = _ask_all(rag, [r for r in rows if r["doc_id"] in half], mode)
            outside = _ask_all(rag, [r for r in rows if r["doc_id"] not in half], mode)
            fixed = MIN_SCORE[mode]
            results[f"{name}-half{i}"] = {
                "threshold": calibration["min_score"][mode],
                "answerable_answered": round(float(np.mean([not x["abstained"] for x in inside])), 3),
                "other_half_abstained": round(float(np.mean([x["abstained"] for x in outside])), 3),
                f"with_fixed_threshold_{fixed}": {
                    "answerable_answered": round(float(np.mean([x["score"] >= fixed for x in inside])), 3),
                    "other_half_abstained": round(float(np.mean([x["score"] < fixed for x in outside])), 3),
                },
            }
            print(f"{name}-half{i}", json.dumps(results[f"{name}-half{i}"]), flush=True)
    return results
