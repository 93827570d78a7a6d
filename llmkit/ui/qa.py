"""The question-answering tab: a context and a question in, the span that answers highlighted, or "the text does
not say" when no span beats the model's "no answer" by more than the threshold."""

from __future__ import annotations

import gradio as gr

MAX_CONTEXT_CHARS = 20_000  # ~40 windows of a 384-token reader: a few seconds on a CPU, not minutes


def verdict(context: str, span, threshold: float) -> tuple[list[tuple[str, str | None]], str]:
    """The context split around the best span (labelled answer, or best guess below the threshold) and the words
    that say which it is."""
    if span is None:
        return [(context, None)], "**The text does not say**: the model found no span in it."
    answered = span.score > threshold
    label = "answer" if answered else "best guess"
    parts = [
        (context[: span.start], None),
        (context[span.start : span.end], label),
        (context[span.end :], None),
    ]
    parts = [(text, tag) for text, tag in parts if text]
    if answered:
        return (
            parts,
            f"**{span.text}** (margin over “no answer” {span.score:.2f}, above the threshold {threshold:g})",
        )
    return parts, (
        f"**The text does not say**: its best span, “{span.text}”, has a margin over “no answer” of "
        f"{span.score:.2f}, not above the threshold {threshold:g}."
    )


def qa_tab(model_dir: str) -> None:
    """Extractive QA with a `llmkit finetune-qa` output (or any extractive QA model folder)."""
    from llmkit.finetune.reader import Reader

    reader = Reader(model_dir)
    trained = reader.threshold  # the one it was fine-tuned with (metrics.json), 0 otherwise
    reader.threshold = float(
        "-inf"
    )  # read() returns every passage's best span; the page applies the slider's

    # A Gradio event handler: the inputs arrive positionally.
    def answer(context, question, threshold):
        context, question = context or "", (question or "").strip()
        if not context.strip() or not question:
            gr.Warning("Type a context and a question first.")
            return [], ""
        if len(context) > MAX_CONTEXT_CHARS:
            raise gr.Error(
                f"The context is {len(context):,} characters; the page reads at most {MAX_CONTEXT_CHARS:,}. "
                "Paste the part that should hold the answer (`llmkit rag` searches whole documents)."
            )
        (span,) = reader.read(question, [context])
        return verdict(context, span, trained if threshold is None else float(threshold))

    with gr.Tab("Answer"):
        gr.Markdown(
            f"The span of the context that answers the question, read by `{model_dir}`; "
            "or “the text does not say” when no span beats the model's “no answer”."
        )
        context = gr.Textbox(label="Context", lines=6, elem_id="qa-context")
        question = gr.Textbox(label="Question", elem_id="qa-question")
        threshold = gr.Slider(
            -10,
            10,
            value=min(10.0, max(-10.0, trained)),
            step=0.1,
            label="Threshold: answer only when the span beats “no answer” by more (higher abstains more often)",
        )
        go = gr.Button("Answer", variant="primary", elem_id="qa-go")
        found = gr.Markdown(elem_id="qa-verdict")
        shown = gr.HighlightedText(
            label="The context", color_map={"answer": "green", "best guess": "gray"}, combine_adjacent=True
        )
        go.click(answer, [context, question, threshold], [shown, found], api_name="answer")
