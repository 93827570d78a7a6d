"""RAG performance: answers (abstention, citations), retrieval quality, embedding, FAISS and FTS5 speed.

    python benchmarks/bench_rag.py --part answers                # the question set in benchmarks/rag_bench/ (~1 min)
    python benchmarks/bench_rag.py --part collections            # twelve collections, default settings (~3 h on 2 busy cores)
    python benchmarks/bench_rag.py --part collections --reader runs/qa-reader   # the same, answers by the reader
    python benchmarks/bench_rag.py --part near_domain            # half of a collection indexed, the other half asked
    python benchmarks/bench_rag.py --store runs/rag-builtin      # everything; the built-in docs' store is built if missing

The answers part indexes benchmarks/rag_bench/docs (ten short documents written for this
benchmark) and asks benchmarks/rag_bench/questions.jsonl: 40 answerable questions, each with the
document and a phrase of the answer, and 30 the documents cannot answer. Per retrieval mode it
calibrates the abstention threshold (on all questions, and two-fold: fit on one half, score the
other), then measures abstention, answer rate, citation accuracy (the first cited sentence
contains the answer phrase), hit@1/hit@10 and ask latency.

Index benchmarks use real MiniLM embeddings of the built-in corpus (chunks and sentences, 10k);
the 100k set adds jittered copies of them (unit noise of 0.35 / sqrt(dim), renormalized), which
keeps the clustered shape of real embeddings (HNSW recall on isotropic Gaussian vectors is not
representative).
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import faiss
import numpy as np

from llmkit.rag import RAG, Retriever, Store, builtin_knowledge_base
from llmkit.rag.abstain import Gate, calibrate
from llmkit.rag.documents import load_paths
from llmkit.rag.evaluate import evaluate, load_qa
from llmkit.rag.index import build_index, search_index
from llmkit.rag.pipeline import open_store
from llmkit.rag.retrieval import MODES
from llmkit.rag.store import SCHEMA

HERE = Path(__file__).resolve().parent


def percentiles(ms: list[float]) -> dict:
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
    }


def embedding_throughput(store, texts: list[str], rounds: int = 3) -> dict:
    """The indexing path's encoder against plain SentenceTransformer.encode, interleaved."""
    model = store.embedder.model
    times = {"llmkit": [], "sentence_transformers": []}
    for _ in range(rounds):
        t = time.perf_counter()
        store.embedder.encode(texts)
        times["llmkit"].append(time.perf_counter() - t)
        t = time.perf_counter()
        model.encode(texts)
        times["sentence_transformers"].append(time.perf_counter() - t)
    rate = {k: len(texts) / statistics.median(v) for k, v in times.items()}
    return {
        "texts": len(texts),
        "texts_per_second": {k: round(v, 1) for k, v in rate.items()},
        "ratio": round(rate["llmkit"] / rate["sentence_transformers"], 3),
    }


def index_benchmarks(base: np.ndarray, queries: np.ndarray) -> dict:
    """Build time, query latency and recall@10 (against exact search) per index kind and size."""
    rng = np.random.default_rng(0)
    results = {}
    for n in (10_000, 100_000):
        reps = -(-n // len(base))
        vectors = np.concatenate(
            [base]
            + [
                base + rng.normal(0, 0.35 / np.sqrt(base.shape[1]), base.shape).astype(np.float32)
                for _ in range(reps - 1)
            ]
        )[:n]
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = np.arange(n, dtype=np.int64)
        truth, row = None, {}
        for kind in ("flat", "hnsw", "ivf", "ivfpq"):
            t = time.perf_counter()
            index = build_index(vectors, ids, kind)
            build = time.perf_counter() - t
            found, lat = [], []
            for q in queries:
                t = time.perf_counter()
                _, top = search_index(index, q, 10)
                lat.append((time.perf_counter() - t) * 1000)
                found.append(set(top.tolist()))
            if kind == "flat":
                truth = found
            recall = statistics.mean(len(f & t) / 10 for f, t in zip(found, truth))
            row[kind] = {"build_s": round(build, 3), **percentiles(lat), "recall@10": round(recall, 4)}
        results[str(n)] = row
    return results


def fts_latency(store, texts: list[str], questions: list[str], n: int = 100_000) -> dict:
    """BM25 query latency (the retriever's lexical search) over an FTS5 table of n chunks of real text."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "fts.sqlite")
        db.executescript(SCHEMA)
        retriever = Retriever(store)
        retriever.store = type("FtsOnly", (), {"_db": lambda self: db})()
        rows = [(i, f"{texts[i % len(texts)]} part{i // len(texts)}") for i in range(n)]
        t = time.perf_counter()
        with db:
            db.executemany("INSERT INTO chunks_fts (rowid, text) VALUES (?, ?)", rows)
        build = time.perf_counter() - t
        lat = []
        for q in questions * 3:
            t = time.perf_counter()
            retriever.lexical(q, 10)
            lat.append((time.perf_counter() - t) * 1000)
        return {"chunks": n, "insert_s": round(build, 2), **percentiles(lat)}


def answers_benchmark(folder: Path, questions: Path, embedder=None) -> dict:
    """Abstention, citation accuracy, hit@k and latency per mode on answerable and unanswerable questions."""
    rows = [json.loads(line) for line in questions.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "store", embedder=embedder)
        store.add_documents(load_paths([folder], root=folder))
        results = {
            "documents": store.count_documents(),
            "chunks": len(store),
            "answerable": sum(r.get("answerable", True) for r in rows),
            "unanswerable": sum(not r.get("answerable", True) for r in rows),
        }
        for mode in MODES:
            scored = []
            for r in rows:  # evidence scores with the gate open, to calibrate on
                hits, vector = Retriever(store).retrieve(r["question"], 10, mode)
                scored.append(
                    (r, hits, Gate(min_score=-1.0).evaluate(store.embedder, vector, hits[:5], mode).score)
                )
            a = [s for r, _, s in scored if r.get("answerable", True)]
            u = [s for r, _, s in scored if not r.get("answerable", True)]
            threshold = calibrate(a, u)
            folds = [(a[0::2], u[0::2], a[1::2], u[1::2]), (a[1::2], u[1::2], a[0::2], u[0::2])]
            held_out = [(calibrate(fa, fu), ta, tu) for fa, fu, ta, tu in folds]
            rag = RAG(
                store, k=5, mode=mode, gate=Gate(min_score={**dict.fromkeys(MODES, 0.0), mode: threshold})
            )
            answered, abstained, cited_right, latency, ranks = 0, 0, 0, [], []
            for r, hits, _ in scored:
                t = time.perf_counter()
                answer = rag.ask(r["question"])
                latency.append((time.perf_counter() - t) * 1000)
                if not r.get("answerable", True):
                    abstained += answer.abstained
                    continue
                answered += not answer.abstained
                first = answer.citations[0].sentence if answer.citations else ""
                cited_right += r["answer"].lower() in first.lower()
                docs = list(dict.fromkeys(Path(h.doc_id).name for h in hits))
                ranks.append(docs.index(r["doc_id"]) + 1 if r["doc_id"] in docs else None)
            n_a, n_u = len(a), len(u)
            results[mode] = {
                "threshold": threshold,
                "unanswerable_abstained": round(abstained / n_u, 3),
                "answerable_answered": round(answered / n_a, 3),
                "abstention_precision": round(abstained / max(1, abstained + n_a - answered), 3),
                "abstention_recall": round(abstained / n_u, 3),
                "two_fold_held_out": {
                    "thresholds": [t for t, _, _ in held_out],
                    "unanswerable_abstained": round(
                        sum(sum(x < t for x in tu) for t, _, tu in held_out) / n_u, 3
                    ),
                    "answerable_answered": round(
                        sum(sum(x >= t for x in ta) for t, ta, _ in held_out) / n_a, 3
                    ),
                },
                "first_citation_contains_answer": round(cited_right / n_a, 3),
                "hit@1": round(sum(x == 1 for x in ranks) / n_a, 3),
                "hit@10": round(sum(x is not None for x in ranks) / n_a, 3),
                "ask_latency": percentiles(latency),
            }
            print(mode, json.dumps(results[mode]), flush=True)
    return results


def fusion_comparison(store, qa: list[dict]) -> dict:
    """hit@1/10 of each leg and of both fusions on one question set."""
    out = {}
    for fusion in ("relative", "rrf"):
        report = evaluate(Retriever(store, fusion=fusion), qa, MODES if fusion == "relative" else ("hybrid",))
        for mode, figures in report.items():
            out[mode if mode != "hybrid" else f"hybrid_{fusion}"] = figures
    return out


def threads_comparison(store, questions: list[str]) -> dict:
    """Dense query latency with torch's default threads against one thread, interleaved."""
    import torch

    default, retriever, times = torch.get_num_threads(), Retriever(store), {"default": [], "one": []}
    for _ in range(3):
        for name, n in (("default", default), ("one", 1)):
            torch.set_num_threads(n)
            for q in questions:
                t = time.perf_counter()
                retriever.dense(q, 10)
                times[name].append((time.perf_counter() - t) * 1000)
    torch.set_num_threads(default)
    return {"default_threads": default, **{name: percentiles(v) for name, v in times.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", default="runs/rag-builtin")
    parser.add_argument("--qa", default=str(HERE / "rag_questions.jsonl"))
    parser.add_argument("--out", default=str(HERE / "results" / "rag.json"))
    parser.add_argument("--part", default="all", choices=["all", "answers", "collections", "near_domain"])
    parser.add_argument(
        "--cache", default="runs/rag-collections", help="where the collections' stores are kept"
    )
    parser.add_argument(
        "--mode", default="hybrid", choices=MODES, help="retrieval mode of --part collections"
    )
    parser.add_argument("--reader", help="with --part collections: answer with this extractive QA model")
    parser.add_argument(
        "--collections",
        nargs="+",
        help="with --part collections: only these (e.g. leave the held-out one out while tuning)",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.part == "collections":  # prose, CPython's language reference, scikit-learn's dataset notes
        from rag_collections import collections_benchmark

        from llmkit.rag.reader import Reader

        reader = Reader(args.reader) if args.reader else None
        results = collections_benchmark(Path(args.cache), args.mode, reader, args.collections)
        subset = "_" + "_".join(args.collections) if args.collections else ""
        out = HERE / "results" / f"rag_collections_{args.mode}{'_reader' if reader else ''}{subset}.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {out}")
        return
    if args.part == "near_domain":  # half of a collection indexed, questions about the other half
        from rag_collections import near_domain_benchmark

        results = near_domain_benchmark(Path(args.cache), args.mode)
        out = HERE / "results" / f"rag_near_domain_{args.mode}.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {out}")
        return

    answers = answers_benchmark(HERE / "rag_bench" / "docs", HERE / "rag_bench" / "questions.jsonl")
    if args.part == "answers":
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out.replace(".json", "_answers.json")).write_text(json.dumps(answers, indent=2) + "\n")
        return

    t = time.perf_counter()
    store = open_store(args.store, builtin=True, progress=False)
    results = {
        "store": {
            "documents": store.count_documents(),
            "chunks": len(store),
            "open_or_build_s": round(time.perf_counter() - t, 1),
        },
        "answers": answers,
    }

    t = time.perf_counter()
    docs = builtin_knowledge_base()
    loaded = time.perf_counter() - t
    t = time.perf_counter()
    again = store.add_documents(docs)
    results["reindex_unchanged"] = {
        "read_documents_s": round(loaded, 2),
        "reindex_s": round(time.perf_counter() - t, 3),
        "documents": len(docs),
        "chunks_embedded": again["chunks_embedded"],
    }
    print(json.dumps(results, indent=2), flush=True)

    chunk_ids, chunk_vectors = store.vectors()
    texts = [c["text"] for c in store.chunks(chunk_ids[:400].tolist()).values()]
    results["embedding"] = embedding_throughput(store, texts)
    print(json.dumps(results["embedding"], indent=2), flush=True)

    qa = load_qa(args.qa)
    results["quality"] = fusion_comparison(store, qa)
    print(json.dumps(results["quality"], indent=2), flush=True)
    results["query_threads"] = threads_comparison(store, [r["question"] for r in qa])
    print(json.dumps(results["query_threads"], indent=2), flush=True)

    rag = RAG(store, k=5)
    lat = []
    for row in qa:
        t = time.perf_counter()
        rag.ask(row["question"])
        lat.append((time.perf_counter() - t) * 1000)
    results["ask_extractive"] = percentiles(lat)

    sentences = [
        s for d in builtin_knowledge_base() for s in re.split(r"(?<=[.!?])\s+", d.text) if 40 < len(s) < 300
    ]
    rng = np.random.default_rng(0)
    extra = [sentences[i] for i in rng.choice(len(sentences), 10_000 - len(chunk_vectors), replace=False)]
    base = np.concatenate([chunk_vectors, store.embedder.encode(extra)])
    queries = store.embedder.encode(
        [r["question"] for r in qa] + [sentences[i] for i in rng.choice(len(sentences), 150)]
    )
    results["faiss"] = index_benchmarks(base, queries)
    print(json.dumps(results["faiss"], indent=2), flush=True)
    results["fts5_lexical"] = fts_latency(store, sentences, [r["question"] for r in qa])
    results["versions"] = {"faiss": faiss.__version__, "sqlite": sqlite3.sqlite_version}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
