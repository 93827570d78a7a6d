"""The loaders of the idle, torch, hfhub, networkx, pandas and sqlalchemy collections (COLLECTIONS in rag_collections.py)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from llmkit.rag import Document

# idle: the manual's h3 sections run from 100 to 3000 characters; consecutive ones are packed up to this size
IDLE_MIN_CHARS = 3000
TORCH_APIS = (
    "nn.Linear nn.Conv2d nn.Dropout nn.Embedding nn.LSTM nn.LayerNorm nn.BatchNorm1d optim.AdamW optim.SGD "
    "utils.data.DataLoader nn.functional.cross_entropy clamp"
).split()
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


class _ManualText(HTMLParser):
    """The main body of a Sphinx HTML page as plain text: a [level, id, title, blocks] entry per heading."""

    BLOCKS = frozenset("p li dt dd pre h1 h2 h3 h4".split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[list] = []
        self.open: list[str] = []  # the block tags open inside the main body
        self.divs = 0  # div depth inside the main body (0: outside)
        self.section_id, self.skip, self.buffer = "", 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if not self.divs:
            self.divs = int(tag == "div" and attrs.get("role") == "main")
            return
        self.divs += tag == "div"
        self.skip += tag == "a" and "headerlink" in (attrs.get("class") or "")  # the pilcrow after a heading
        if tag == "section":
            self.section_id = attrs.get("id", "")
        if tag in self.BLOCKS:
            self.flush()
            self.open.append(tag)
            if tag[0] == "h":
                self.sections.append([int(tag[1]), self.section_id, "", []])

    def handle_endtag(self, tag):
        if not self.divs:
            return
        self.divs -= tag == "div"
        self.skip -= bool(tag == "a" and self.skip)
        if tag in self.BLOCKS and tag in self.open:
            self.flush()
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag) :]

    def handle_data(self, data):
        if self.divs and not self.skip and self.sections:
            self.buffer.append(data)

    def flush(self) -> None:
        """End the block being read: a heading's title, or a paragraph, list item, term or code block."""
        raw, self.buffer = "".join(self.buffer), []
        text = raw.strip("\n").rstrip() if "pre" in self.open else " ".join(raw.split())
        if not text or not self.sections or text.startswith(">>>"):  # a Python session is code, not prose
            return
        if self.open and self.open[-1][0] == "h":
            self.sections[-1][2] = text
            return
        # list items one a line, a definition on the line under its term, other blocks a paragraph apart
        kind = next((t for t in reversed(self.open) if t in ("li", "dt", "dd", "pre")), "p")
        blocks = self.sections[-1][3]
        joiner = "\n" if blocks and (kind, blocks[-1][0]) in {("li", "li"), ("dd", "dt")} else "\n\n"
        blocks.append((kind, joiner + text if blocks else text))


def idle_documents() -> list[Document]:
    """The IDLE manual CPython ships, its sections packed up to IDLE_MIN_CHARS (a new document per chapter)."""
    import idlelib

    page = Path(idlelib.__file__).with_name("help.html")
    parser = _ManualText()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    if not parser.sections:  # another Sphinx layout: say so rather than index nothing
        raise SystemExit(f"{page}: no sections found in its main body")
    groups: list[tuple[str, list[str], list[str]]] = []  # (first section's id, titles, texts)
    for level, section_id, title, blocks in parser.sections:
        text = title + ("\n\n" + "".join(b for _, b in blocks) if blocks else "")
        if level <= 2 or not groups or sum(map(len, groups[-1][2])) >= IDLE_MIN_CHARS:
            groups.append((section_id, [], []))
        groups[-1][1].append(title)
        groups[-1][2].append(text)
    docs = []
    for section_id, titles, texts in groups:
        meta = {"source": f"idlelib/help.html#{section_id}", "title": " / ".join(titles)}
        docs.append(Document(f"idle/{section_id}", "\n\n".join(texts), meta))
    return docs


def torch_documents() -> list[Document]:
    """One page per API of TORCH_APIS: its signature and docstring, without the example sessions."""
    import inspect

    import torch

    docs = []
    for name in TORCH_APIS:
        obj = torch
        for part in name.split("."):
            obj = getattr(obj, part)
        try:
            signature = re.sub(r" at 0x[0-9a-f]+", "", str(inspect.signature(obj)))
        except (TypeError, ValueError):  # builtins such as torch.clamp: the docstring's first line is one
            signature = "(...)"
        # an "Example(s):" block is an indented doctest session (code, not prose to quote); a note may follow
        doc = re.sub(r"(?m)^Examples?::?\n(?:[ \t]+\S.*\n|[ \t]*\n)*", "", (inspect.getdoc(obj) or "") + "\n")
        text = f"torch.{name}{signature}\n\n{doc.strip()}"
        docs.append(Document(f"torch/{name}", text, {"source": f"inspect:torch.{name}", "title": name}))
    return docs
