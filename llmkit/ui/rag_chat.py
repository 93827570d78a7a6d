"""The RAG chat app: a streaming chat, the sources behind each answer, uploads, and settings."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import gradio as gr

from llmkit.rag.documents import load_file
from llmkit.rag.pipeline import RAG
from llmkit.rag.retrieval import MODES

MAX_UPLOAD_MB = 20


def _text_of(content) -> str:
    """Message content as plain text: gradio_client sends strings, the browser sends lists of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text") or content.get("value") or ""
    if isinstance(content, (list, tuple)):
        return " ".join(_text_of(c) for c in content)
    return str(content or "")


def sources_markdown(answer) -> str:
    """The sources panel: each retrieved chunk with its number, source, score and a snippet."""
    if answer is None or not answer.sources:
        return "*No sources for this answer.*"
    lines = []
    for n, hit in enumerate(answer.sources, start=1):
        cited = " — **cited**" if n in answer.cited else ""
        snippet = " ".join(hit.text.split())
        snippet = snippet[:300] + ("…" if len(snippet) > 300 else "")
        title = hit.metadata.get("heading") or hit.metadata.get("title") or hit.doc_id
        lines.append(f"**[{n}] {title}**{cited}  \n`{hit.source}` · score {hit.score:.3f}\n\n> {snippet}")
    return "\n\n".join(lines)


def safe_upload_name(name: str) -> str:
    """A file name that cannot leave the uploads folder (no directories, no dot-files)."""
    base = re.split(r"[\\/]", name)[-1]
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")
    return base or "upload.txt"


def build_rag_chat(rag: RAG, title: str = "Chat with your documents") -> gr.Blocks:
    """A gr.Blocks chat over `rag`; uploads are added to its store."""
    uploads = rag.store.path / "uploads"

    def respond(message, history, k, mode):
        question = _text_of(message)
        history = [{"role": m["role"], "content": _text_of(m["content"])} for m in (history or [])]
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": ""}]
        answer = None
        try:
            for text, answer in rag.stream(question, k=int(k), mode=mode):
                history[-1]["content"] = text
                yield history, sources_markdown(answer), ""
        except Exception as err:  # keep serving: report the problem in the chat instead of crashing
            history[-1]["content"] = f"Sorry, something went wrong: {err}"
        yield history, sources_markdown(answer), ""

    def add_files(files):
        if not files:
            return "No file received."
        uploads.mkdir(parents=True, exist_ok=True)
        added, problems = [], []
        docs = []
        for f in files:
            src = Path(f if isinstance(f, str) else f.name)
            name = safe_upload_name(getattr(f, "orig_name", None) or src.name)
            if src.stat().st_size > MAX_UPLOAD_MB * 2**20:
                problems.append(f"{name}: larger than {MAX_UPLOAD_MB} MB")
                continue
            target = uploads / name
            shutil.copyfile(src, target)
            try:
                doc = load_file(target, rag.store.path)
            except (ValueError, OSError) as err:
                problems.append(f"{name}: {err}")
                target.unlink(missing_ok=True)
                continue
            docs.append(doc)
            added.append(name)
        if docs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                stats = rag.store.add_documents(docs)
            msg = f"Added {', '.join(added)} ({stats['chunks_embedded']} chunks)."
        else:
            msg = "Nothing added."
        return msg + ("  \nSkipped: " + "; ".join(problems) if problems else "")

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"## {title}\nAnswers cite their sources as [n]; the panel on the right shows each source.")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", height=460)
                with gr.Row():
                    box = gr.Textbox(placeholder="Ask a question…", show_label=False, scale=5, elem_id="question")
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
            with gr.Column(scale=2):
                sources = gr.Markdown("*Sources appear here.*", elem_id="sources")
                with gr.Accordion("Settings", open=False):
                    k = gr.Slider(1, 10, value=rag.k, step=1, label="Sources to retrieve (k)")
                    mode = gr.Radio(list(MODES), value=rag.mode, label="Retrieval")
                    gr.Markdown(f"Generator: `{getattr(rag.generator, 'name', 'custom')}` · "
                                f"{rag.store.count_documents():,} documents, {len(rag.store):,} chunks")
                with gr.Accordion("Add documents", open=False):
                    files = gr.File(file_count="multiple", file_types=[".txt", ".md", ".html", ".htm", ".pdf"], label="Upload")
                    status = gr.Markdown()
        inputs, outputs = [box, chatbot, k, mode], [chatbot, sources, box]
        send.click(respond, inputs, outputs, api_name="chat")
        box.submit(respond, inputs, outputs, api_name=False)
        files.upload(add_files, files, status, api_name="add_files")
    return demo
