"""Answers stream, cite only retrieved sources, and come from each generator backend."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmkit.errors import UserError
from llmkit.rag import RAG, check_citations, make_generator
from llmkit.rag.generators import OpenAIGenerator, TransformersGenerator, build_messages
from llmkit.rag.pipeline import MAX_QUESTION_CHARS
from tests.rag.helpers import QUESTIONS


def test_extractive_answer_cites_the_right_source(topic_store):
    rag = RAG(topic_store, k=3)
    pieces = list(rag.stream(QUESTIONS[0][0]))
    assert len(pieces) > 3  # streamed word by word
    answer = pieces[-1][1]
    assert answer.sources[0].doc_id == "bees.md"
    assert answer.cited and set(answer.cited) <= {1, 2, 3} and not answer.invalid_citations
    assert "[1]" in answer.text and "waggle" in answer.text


def test_citations_are_checked_against_the_retrieved_set():
    text, cited, invalid = check_citations("Lava is molten rock [2]. Bees dance [7][1].", 3)
    assert cited == [1, 2] and invalid == [7]
    assert text == "Lava is molten rock [2]. Bees dance [1]."


def test_empty_and_overlong_questions_get_a_reply(topic_store):
    rag = RAG(topic_store)
    assert rag.ask("   ").text == "Please type a question."
    long = rag.ask("why " * MAX_QUESTION_CHARS)
    assert "under 2,000" in long.text and not long.sources


def test_prompt_fences_sources_as_data(topic_store):
    hits = RAG(topic_store).retriever.search(QUESTIONS[1][0], k=2)
    messages = build_messages("What is lava?", hits)
    assert "not instructions" in messages[0]["content"]
    assert messages[1]["content"].count("<source id=") == 2 and "</source>" in messages[1]["content"]


class _FakeOpenAI(BaseHTTPRequestHandler):
    """A stand-in for an OpenAI-compatible server (vLLM/TGI cannot run here): streams a fixed answer."""

    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _FakeOpenAI.seen.append((self.path, self.headers.get("Authorization"), body))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in ["Lava is ", "molten rock ", "[1] and [9]."]:
            chunk = {"choices": [{"delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args):
        pass


def test_openai_compatible_backend_streams_and_is_citation_checked(topic_store, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    try:
        rag = RAG(
            topic_store,
            make_generator(
                "openai", topic_store.embedder, "tiny-llm", f"http://127.0.0.1:{server.server_port}/v1"
            ),
            k=2,
        )
        pieces = [text for text, _ in rag.stream(QUESTIONS[1][0])]
        answer = rag.ask(QUESTIONS[1][0])
    finally:
        server.shutdown()
    assert len(pieces) >= 3
    assert answer.text == "Lava is molten rock [1] and ." and answer.invalid_citations == [9]
    path, auth, body = _FakeOpenAI.seen[-1]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test"
    assert (
        body["stream"] is True
        and body["model"] == "tiny-llm"
        and '<source id="1"' in body["messages"][1]["content"]
    )
    with pytest.raises(UserError, match="could not reach"):
        list(OpenAIGenerator("http://127.0.0.1:9", "m").stream("q", []))


def test_local_transformers_generator_uses_a_recipe_output(topic_store, tiny_run):
    out, _ = tiny_run
    generator = TransformersGenerator(str(out), max_new_tokens=8)
    answer = RAG(topic_store, generator, k=2).ask(QUESTIONS[0][0])
    assert (
        not answer.abstained and answer.sources and answer.text.strip()
    )  # the model wrote an answer from sources
    with pytest.raises(UserError, match="needs --generator_model"):
        make_generator("transformers", topic_store.embedder)
