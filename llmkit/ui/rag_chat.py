"""The RAG chat app: a streaming chat, the sources behind each answer, uploads, and settings."""

from __future__ import annotations

import filecmp
import re
import shutil
import tempfile
import unicodedata
import warnings
from html import escape
from pathlib import Path

import gradio as gr

from llmkit.errors import UserError
from llmkit.rag.documents import load_file
from llmkit.rag.embeddings import use_query_threads
from llmkit.rag.layout import DATABASE, empty_store
from llmkit.rag.pipeline import RAG
from llmkit.rag.retrieval import MODES
from llmkit.rag.serve import MAX_QUESTION_CHARS
from llmkit.secrets import redact
from llmkit.ui.inputs import name_bad_inputs

MAX_UPLOAD_MB = 20
# Messages of the chat sent back with each answer. Answers do not depend on earlier turns, and the whole
# history travels with every request and every streamed update: unbounded, a long chat costs more each turn.
MAX_HISTORY_MESSAGES = 40


def _text_of(content) -> str:
    """Message content as plain text: gradio_client sends strings, the browser sends lists of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text") or content.get("value") or ""
    if isinstance(content, (list, tuple)):
        return " ".join(_text_of(c) for c in content)
    return str(content or "")


CONTEXT_CHARS = 240  # characters of the chunk shown on each side of the cited sentence
# Inline, so the app and a Space (whose launch() the builder does not control) look the same.
STYLE = (
    "<style>#sources pre.context{white-space:pre-wrap;font-size:.85em;max-height:14em;overflow:auto}"
    "#sources mark{background:#ffe58a}#sources .cited{color:#0a7d32;font-weight:600}"
    "#sources details.below summary{cursor:pointer;color:#666;margin:.5em 0}</style>"
)


def _shown(text: str) -> str:
    """Document text as the panel shows it: token-shaped strings redacted, then HTML-escaped."""
    return escape(redact(text))


def _source_block(n: int, hit, answer, quote) -> str:
    title = hit.metadata.get("title") or hit.doc_id
    where = " · ".join(x for x in (hit.metadata.get("source", hit.doc_id), hit.page) if x)
    head = (
        f"<div class='source' id='source-{n}'><b>[{n}] {_shown(title)}</b>"
        + (" <span class='cited'>cited</span>" if n in answer.cited else "")
        + f"<br><code>{_shown(where)}</code> · score {hit.score:.3f} · similarity {hit.similarity:.2f}"
    )
    if quote and quote.start >= 0:
        a, b = quote.start, quote.end
        before, after = hit.text[max(0, a - CONTEXT_CHARS) : a], hit.text[b : b + CONTEXT_CHARS]
        body = (
            ("…" if a > CONTEXT_CHARS else "")
            + _shown(before)
            + f"<mark>{_shown(hit.text[a:b])}</mark>"
            + _shown(after)
            + ("…" if b + CONTEXT_CHARS < len(hit.text) else "")
        )
    else:
        body = _shown(hit.text[: 2 * CONTEXT_CHARS]) + ("…" if len(hit.text) > 2 * CONTEXT_CHARS else "")
    return f"{head}<pre class='context'>{body}</pre></div>"


def sources_html(answer) -> str:
    """The sources panel: what the answer cites and what passed the relevance cut, the rest folded away.

    Each source shows its title, path, page, score and the cited sentence highlighted in its
    context. Sources below the relevance cut (and all of them when the answer abstained) sit in a
    collapsed "N more retrieved" section. Document text is redacted of token-shaped strings and
    HTML-escaped, never rendered: a document's Markdown or `<img>` tags show as the text they are.
    """
    if answer is None or not answer.sources:
        return "<p><em>No sources for this answer.</em></p>"
    quotes = {c.n: c for c in answer.citations}
    kept = set(answer.evidence.kept) if answer.evidence and not answer.abstained else set()
    shown, below = [], []
    for n, hit in enumerate(answer.sources, start=1):
        (shown if n in kept or n in answer.cited else below).append(
            _source_block(n, hit, answer, quotes.get(n))
        )
    blocks = []
    if answer.abstained:
        blocks.append("<p class='abstained'><em>No source is close enough to answer.</em></p>")
    blocks += shown
    if below:
        label = "nearest passages" if answer.abstained else "more retrieved, below the relevance cut"
        blocks.append(
            f"<details class='below'><summary>{len(below)} {label}</summary>"
            + "\n".join(below)
            + "</details>"
        )
    return STYLE + "\n".join(blocks)


def store_counts(rag: RAG) -> str:
    """The settings line: generator, abstention, and the store's current size (re-read from disk)."""
    rag.store.refresh()
    return (
        f"Generator: `{getattr(rag.generator, 'name', 'custom')}` · {rag.gate.describe(rag.mode)}  \n"
        f"{rag.store.count_documents():,} documents, {len(rag.store):,} chunks"
    )


def safe_upload_name(name: str) -> str:
    """A file name that cannot leave the uploads folder (no directories, no dot-files); letters of any script stay."""
    base = unicodedata.normalize("NFC", re.split(r"[\\/]", name)[-1])
    base = re.sub(r"[^\w. -]", "_", base).strip(" .")  # \w: 東京.md stays apart from 大阪.md
    stem, suffix = Path(base).stem, Path(base).suffix[:16]
    while len((stem + suffix).encode()) > 200:  # a file name is at most 255 bytes
        stem = stem[:-1]
    return stem + suffix if stem else "upload.txt"


def add_uploads(rag: RAG, files) -> str:
    """Copy uploaded files into the store's uploads/ folder and index them; a one-line report of what was added.

    A file is read in a hidden folder first: one that cannot be loaded never replaces an earlier upload of its
    name (it used to overwrite the good file, then delete it). One that replaces an earlier upload says so.
    """
    uploads = rag.store.path / "uploads"
    if not files:
        return "No file received."
    if not (rag.store.path / DATABASE).is_file():  # else uploads/ was made afresh: an orphan folder
        return f"Nothing added: the store {rag.store.path} is gone (deleted or moved while the app ran); restart the app."
    uploads.mkdir(parents=True, exist_ok=True)
    # the uploads this one replaces, kept until the store has taken the new ones (a busy store refuses them)
    previous = Path(tempfile.mkdtemp(prefix=".previous-", dir=uploads))
    try:
        return _add_files(rag, files, uploads, previous)
    finally:
        shutil.rmtree(previous, ignore_errors=True)


def _add_files(rag: RAG, files, uploads: Path, previous: Path) -> str:
    """add_uploads' work: each file checked, then put in uploads/ (what it replaces set aside in `previous`),
    then all indexed at once; if the store refuses them, uploads/ is put back as it was."""
    added, problems, names, docs = [], [], [], []
    for f in files:
        src = Path(f if isinstance(f, str) else f.name)
        name = safe_upload_name(getattr(f, "orig_name", None) or src.name)
        first, n = Path(name), 2
        # two files of one upload with the same name: the second must not replace the first
        while name in names:
            name, n = f"{first.stem}-{n}{first.suffix}", n + 1
        if src.stat().st_size > MAX_UPLOAD_MB * 2**20:
            problems.append(f"{name}: larger than {MAX_UPLOAD_MB} MB")
            continue
        target = uploads / name
        incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=uploads))
        try:
            shutil.copyfile(src, incoming / name)
            load_file(incoming / name)  # checked before it takes the place of anything
            replaced = target.is_file() and not filecmp.cmp(target, incoming / name, shallow=False)
            if target.is_file():
                shutil.copy2(target, previous / name)
            (incoming / name).replace(target)
            docs.append(load_file(target, rag.store.anchor, shown=f"uploads/{name}"))
        except (ValueError, OSError) as err:
            problems.append(f"{name}: {err}")
            continue
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        names.append(name)
        added.append(f"{name} (replaces the earlier {name})" if replaced else name)
    if docs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # never wait (the page would hang) for a `llmkit rag index` writing the store
                stats = rag.store.add_documents(docs, wait=False)
            except UserError as err:
                for name in names:  # uploads/ as it was: the files it held, and none the store does not
                    if (previous / name).is_file():
                        (previous / name).replace(uploads / name)
                    else:
                        (uploads / name).unlink(missing_ok=True)
                return f"Nothing added: {err}"
        chunks = stats["chunks_embedded"]
        msg = f"Added {', '.join(added)} ({chunks} chunk{'' if chunks == 1 else 's'})."
    else:
        msg = "Nothing added."
    return msg + ("  \nSkipped: " + "; ".join(problems) if problems else "")


def build_rag_chat(rag: RAG, title: str = "Chat with your documents") -> gr.Blocks:
    """A gr.Blocks chat over `rag`; uploads are added to its store, and a store re-indexed on disk is reloaded."""
    use_query_threads()

    def respond(message, history, k, mode):
        question = _text_of(message)
        history = [{"role": m["role"], "content": _text_of(m["content"])} for m in (history or [])]
        history = history[-(MAX_HISTORY_MESSAGES - 2) :]
        shown = (
            question
            if len(question) <= MAX_QUESTION_CHARS
            else f"{question[:200]}… ({len(question):,} characters)"
        )
        # an over-long question is refused, and was echoed whole into the history every later turn sends back
        history += [{"role": "user", "content": redact(shown)}, {"role": "assistant", "content": ""}]
        answer = None
        try:
            rag.store.refresh()  # `rag remove` may have emptied it since the app started
            if len(rag.store) == 0:  # it was answered "The documents hold nothing about that", as if searched
                raise UserError(f"{empty_store(rag.store.path)[:-1]}, or upload files under Add documents.")
            for text, answer in rag.stream(question, k=int(k), mode=mode):
                history[-1]["content"] = redact(text)  # a token quoted from a document is never shown
                yield history, sources_html(answer), ""
        except Exception as err:  # keep serving: report the problem in the chat instead of crashing
            history[-1]["content"] = redact(f"Sorry, something went wrong: {err}")
        yield history, sources_html(answer), ""

    with gr.Blocks(title=title) as demo:
        gr.Markdown(
            f"## {title}\nAnswers cite their sources as [n]; the panel on the right shows each source."
        )
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", height=460)
                with gr.Row():
                    box = gr.Textbox(
                        placeholder="Ask a question…", show_label=False, scale=5, elem_id="question"
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
            with gr.Column(scale=2):
                sources = gr.HTML("<p><em>Sources appear here.</em></p>", elem_id="sources")
                with gr.Accordion("Settings", open=False):
                    # up to the app's --k: a slider from 1 to 10 holding 20 refused every question of the page
                    k = gr.Slider(1, max(10, rag.k), value=rag.k, step=1, label="Sources to retrieve (k)")
                    mode = gr.Radio(list(MODES), value=rag.mode, label="Retrieval")
                    counts = gr.Markdown(store_counts(rag), elem_id="counts")
                with gr.Accordion("Add documents", open=False):
                    files = gr.File(
                        file_count="multiple",
                        file_types=[".txt", ".md", ".html", ".htm", ".pdf"],
                        label="Upload",
                    )
                    status = gr.Markdown()
        inputs, outputs = [box, chatbot, k, mode], [chatbot, sources, box]

        def counts_now():
            return store_counts(rag)

        # The counts follow each answer and upload (the store may have been re-indexed meanwhile).
        send.click(respond, inputs, outputs, api_name="chat").then(counts_now, None, counts, api_name=False)
        box.submit(respond, inputs, outputs, api_name=False).then(counts_now, None, counts, api_name=False)
        files.upload(lambda f: add_uploads(rag, f), files, status, api_name="add_files").then(
            counts_now, None, counts, api_name=False
        )
        counts_api = gr.Button(visible=False)
        counts_api.click(counts_now, None, counts, api_name="counts")
        demo.load(counts_now, None, counts, api_name=False)  # a reloaded page shows today's counts
    return name_bad_inputs(demo)
