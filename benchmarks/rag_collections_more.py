"""The loaders of the hfhub, networkx, pandas and sqlalchemy collections (COLLECTIONS in rag_collections.py)."""

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


# pandas 3.1.1 (the installed one when the questions were written): the docstrings change between versions
PANDAS_APIS = (
    "read_csv merge concat pivot_table DataFrame.groupby Series.rolling to_datetime cut DataFrame.fillna "
    "DataFrame.drop_duplicates get_dummies DataFrame.explode DataFrame.to_parquet DataFrame.sort_values"
).split()
# SQLAlchemy 2.1.9: the narrative docstrings of dialect drivers and ORM extensions
SQLALCHEMY_MODULES = (
    "dialects.sqlite.pysqlite dialects.sqlite.aiosqlite dialects.postgresql.psycopg2 dialects.postgresql.asyncpg "
    "dialects.mssql.pyodbc ext.mutable ext.orderinglist ext.indexable ext.serializer ext.compiler ext.automap "
    "orm.collections"
).split()


def pandas_documents() -> list[Document]:
    """One page per API of PANDAS_APIS (pandas 3.1.1): its signature and docstring, without its examples."""
    import inspect

    import pandas

    docs = []
    for name in PANDAS_APIS:
        obj = pandas
        for part in name.split("."):
            obj = getattr(obj, part)
        signature = re.sub(r" at 0x[0-9a-f]+", "", str(inspect.signature(obj)))
        # the Examples section (last in every one of these) and any other session are code, not prose to quote
        doc = (inspect.getdoc(obj) or "").split("\nExamples\n--------")[0] + "\n"
        doc = re.sub(r"(?m)^[ \t]*>>>.*\n(?:.*\S.*\n)*", "", doc)
        doc = re.sub(r"\n{3,}", "\n\n", doc).strip()
        text = f"pandas.{name}{signature}\n\n{doc}"
        docs.append(Document(f"pandas/{name}", text, {"source": f"inspect:pandas.{name}", "title": name}))
    return docs


def _without_rst_code(text: str) -> str:
    """reST text without its literal blocks ("::" paragraphs' and code directives' indented bodies)."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        directive = re.match(r"\.\. (?:sourcecode|code-block|code)::", stripped)
        literal = stripped.endswith("::") and not stripped.startswith("..")
        if not (directive or literal):
            out.append(line)
            i += 1
            continue
        if literal and stripped != "::":  # the paragraph stays, its "::" is one colon in the rendered text
            out.append(line.rstrip()[:-1])
        indent = len(line) - len(line.lstrip())
        i += 1
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            i += 1
        out.append("")
    return "\n".join(out)


def sqlalchemy_documents() -> list[Document]:
    """The narrative docstrings of SQLALCHEMY_MODULES (SQLAlchemy 2.1.9), without their code blocks and sessions."""
    import importlib
    import inspect

    docs = []
    for name in SQLALCHEMY_MODULES:
        module = importlib.import_module(f"sqlalchemy.{name}")
        doc = _without_rst_code(inspect.getdoc(module) or "") + "\n"
        doc = re.sub(r"(?m)^[ \t]*>>>.*\n(?:.*\S.*\n)*", "", doc)
        text = re.sub(r"\n{3,}", "\n\n", doc).strip()
        meta = {"source": f"inspect:sqlalchemy.{name}", "title": name}
        docs.append(Document(f"sqlalchemy/{name}", text, meta))
    return docs
