"""The loaders of the hfhub and networkx collections (see rag_collections.py, which lists them in COLLECTIONS)."""

from __future__ import annotations

import re

from llmkit.rag import Document

HFHUB_APIS = (
    "hf_hub_download snapshot_download try_to_load_from_cache login scan_cache_dir HfApi.upload_file "
    "HfApi.upload_folder HfApi.create_repo HfApi.create_commit HfApi.delete_file HfApi.create_branch "
    "HfApi.update_repo_settings"
).split()
NETWORKX_MODULES = (
    "algorithms.d_separation algorithms.isomorphism.isomorphvf2 algorithms.isomorphism.ismags "
    "algorithms.isomorphism.vf2userfunc algorithms.isomorphism.temporalisomorphvf2 classes.reportviews "
    "classes.graphviews algorithms.summarization algorithms.tree.recognition algorithms.bipartite generators.sudoku "
    "generators.trees readwrite.gml readwrite.graphml algorithms.approximation.traveling_salesman"
).split()


def hfhub_documents() -> list[Document]:
    """One page per API of HFHUB_APIS: its signature and docstring, without the fenced code blocks."""
    import inspect

    import huggingface_hub

    docs = []
    for name in HFHUB_APIS:
        obj = huggingface_hub
        for part in name.split("."):
            obj = getattr(obj, part)
        signature = re.sub(r" at 0x[0-9a-f]+", "", str(inspect.signature(obj)))
        # fenced blocks hold example sessions, cache trees and console output: code, not prose to quote
        doc = re.sub(r"(?ms)^(?:Examples?:[ \t]*\n\s*)?```.*?^```[ \t]*$\n?", "", inspect.getdoc(obj) or "")
        text = f"huggingface_hub.{name}{signature}\n\n{doc.strip()}"
        meta = {"source": f"inspect:huggingface_hub.{name}", "title": name}
        docs.append(Document(f"hfhub/{name}", text, meta))
    return docs


def networkx_documents() -> list[Document]:
    """The narrative docstrings of NETWORKX_MODULES, without their doctest sessions."""
    import importlib
    import inspect

    docs = []
    for name in NETWORKX_MODULES:
        module = importlib.import_module(f"networkx.{name}")
        # a session runs from its first ">>>" line to the next blank line (its output included)
        doc = re.sub(r"(?m)^>>>.*\n(?:.*\S.*\n)*", "", (inspect.getdoc(module) or "") + "\n")
        text = re.sub(r"\n{3,}", "\n\n", doc).strip()
        meta = {"source": f"inspect:networkx.{name}", "title": name}
        docs.append(Document(f"networkx/{name}", text, meta))
    return docs
