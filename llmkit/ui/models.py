"""The model playground: text generation, classification, tagging, question answering, text-to-text and image tabs."""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr

from llmkit.errors import UserError
from llmkit.loading import load_pretrained
from llmkit.plots import plt
from llmkit.ui.checks import check_head, check_model_folder
from llmkit.ui.inputs import name_bad_inputs


def classifier_tab(model_dir: str) -> None:
    """Text -> label probabilities for a saved sequence classifier."""
    from llmkit.finetune.classify import label_probabilities

    # A Gradio event handler. The classifier is read again when its folder changes (a run trained again), so the
    # folder is checked again too: deleted, cut short mid-save, or replaced by another kind of model.
    def classify(text):
        if not (text or "").strip():
            return _nothing_typed({})
        try:
            check_model_folder(model_dir)
            check_head(model_dir, "--classifier")
            return label_probabilities(model_dir, text)
        except Exception as err:  # a UserError from the checks, or what loading a half-written folder raises
            raise gr.Error(
                f"The classifier in {model_dir} changed since the app started and cannot be used now: {err} "
                "(a run still saving there: try again when it ends; otherwise restart the app)."
            ) from None

    with gr.Tab("Classify"):
        gr.Markdown(f"Label probabilities from `{model_dir}`.")
        text = gr.Textbox(label="Text", lines=3, elem_id="classify-text")
        go = gr.Button("Classify", variant="primary")
        probs = gr.Label(label="Labels", num_top_classes=10)
        go.click(classify, text, probs, api_name="classify")


def tagger_tab(model_dir: str) -> None:
    """Text -> its tagged spans (entities) for a saved token classifier, word pieces merged into words."""
    from transformers import AutoTokenizer, pipeline

    tokenizer = load_pretrained(AutoTokenizer, model_dir)
    # A text longer than the model's window is read in overlapping windows (fast tokenizers only): without a
    # stride the pipeline tagged the first 512 tokens and dropped the rest, in silence.
    stride = {"stride": min(128, tokenizer.model_max_length // 4)} if tokenizer.is_fast else {}
    tagger = pipeline(
        "token-classification", model=model_dir, tokenizer=tokenizer, aggregation_strategy="simple", **stride
    )

    def tag(text):
        if not (text or "").strip():
            return _nothing_typed(None), []
        found = tagger(text)
        spans = [{"entity": e["entity_group"], "start": e["start"], "end": e["end"]} for e in found]
        rows = [[text[e["start"] : e["end"]], e["entity_group"], round(float(e["score"]), 3)] for e in found]
        return {"text": text, "entities": spans}, rows

    with gr.Tab("Tag"):
        gr.Markdown(f"The tagged words of a text, from `{model_dir}` (B-/I- pieces joined into one span).")
        text = gr.Textbox(label="Text", lines=3, elem_id="tag-text")
        go = gr.Button("Tag", variant="primary")
        shown = gr.HighlightedText(label="Tags", elem_id="tag-output")
        table = gr.Dataframe(headers=["words", "tag", "score"], label="Each span")
        go.click(tag, text, [shown, table], api_name="tag")


def text2text_tab(model_dir: str) -> None:
    """Input -> generated output for a saved seq2seq model, with decoding settings."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from llmkit.finetune.seq2seq import text2text

    model = load_pretrained(AutoModelForSeq2SeqLM, model_dir).eval()
    tokenizer = load_pretrained(AutoTokenizer, model_dir)
    with gr.Tab("Text to text"):
        gr.Markdown(
            f"Generate with `{model_dir}` (include the task prefix the model was trained with, e.g. `summarize: `)."
        )
        source = gr.Textbox(label="Input", lines=4)
        with gr.Row():
            max_new = gr.Slider(1, 256, value=64, step=1, label="Max new tokens")
            beams = gr.Slider(1, 8, value=1, step=1, label="Beams")
        go = gr.Button("Generate", variant="primary")
        output = gr.Textbox(label="Output", lines=4)
        go.click(
            lambda s, m, b: (
                text2text(
                    model_dir, s, max_new_tokens=int(m), num_beams=int(b), model=model, tokenizer=tokenizer
                )
                if (s or "").strip()
                else _nothing_typed("")
            ),
            [source, max_new, beams],
            output,
            api_name="text2text",
        )


HEATMAP_TOKENS = 96  # the attention map's tokens at most: more would not be readable


def _attention_figure(tokens: list[str], weights, title: str):
    """A token-by-token heatmap of one head's attention weights, sized to the number of tokens."""
    fig, ax = plt.subplots(
        figsize=(min(12, 2 + 0.35 * len(tokens)), min(10, 1.5 + 0.3 * len(tokens))), dpi=90
    )
    ax.imshow(weights, cmap="viridis")
    ax.set(
        xticks=range(len(tokens)), yticks=range(len(tokens)), xlabel="attends to", ylabel="token", title=title
    )
    ax.set_xticklabels([repr(t)[1:-1] for t in tokens], rotation=90, fontsize=7)
    ax.set_yticklabels([repr(t)[1:-1] for t in tokens], fontsize=7)
    fig.tight_layout()
    return fig


def generation_tab(model_dir: str) -> None:
    """Streamed sampling with decoding controls; each token's alternatives; an attention heatmap."""
    from llmkit.lm.generate import Sampling, load_causal_lm
    from llmkit.lm.inspect import attention_map, generate_steps

    model, tokenizer = load_causal_lm(model_dir)
    n_layer = getattr(model.config, "n_layer", None) or model.config.num_hidden_layers
    n_head = getattr(model.config, "n_head", None) or model.config.num_attention_heads

    # A Gradio event handler: the inputs arrive positionally.
    def generate(prompt, max_new, temperature, top_k, top_p, seed):
        if not (prompt or "").strip():
            yield "Type a prompt first.", []
            return
        text, shown, ids, rows = prompt, prompt, [], []
        seed = 0 if seed is None else int(seed)  # a cleared Seed box samples as seed 0
        sampling = Sampling(int(max_new), float(temperature), int(top_k), float(top_p), seed)
        try:
            context = model.config.max_position_embeddings
            given = len(tokenizer(prompt)["input_ids"])
            if 0 < context - given < sampling.max_new_tokens:  # was said only in the server's log
                gr.Warning(
                    f"At most {context - given} new tokens, not {sampling.max_new_tokens}: the prompt's {given} "
                    f"tokens leave that much of the model's {context}-token context."
                )
            for step in generate_steps(model, tokenizer, prompt, sampling):
                # decoded together: token by token, each byte of an emoji, CJK or accented letter showed as U+FFFD
                ids.append(step.token_id)
                text = prompt + tokenizer.decode(ids)
                rows.append(
                    [
                        repr(step.token),
                        round(step.probability, 4),
                        ", ".join(f"{t!r} {p:.3f}" for t, p in step.alternatives),
                    ]
                )
                shown = text.rstrip("\ufffd")  # a character still awaiting its next bytes
                yield shown, rows
            if shown != text:  # the last token ended inside a character: show what the model wrote
                yield text, rows
        except UserError as err:  # a prompt longer than the model's context: say so, not a bare "Error"
            raise gr.Error(str(err)) from None

    def heatmap(text, layer, head):
        if not (text or "").strip():
            return None
        # The end of a long text, in tokens: its last 400 characters were cut to the model's context from the
        # right, so a small model's map showed tokens from the middle of the text under "the text above".
        ids = tokenizer(text)["input_ids"]
        room = min(HEATMAP_TOKENS, model.config.max_position_embeddings)
        tail = tokenizer.decode(ids[-room:]) if len(ids) > room else text
        tokens, weights = attention_map(model, tokenizer, tail, layer=int(layer), head=int(head))
        cut = f" — the last {len(tokens)} of {len(ids)} tokens" if len(ids) > len(tokens) else ""
        return _attention_figure(tokens, weights.numpy(), f"layer {int(layer)}, head {int(head)}{cut}")

    with gr.Tab("Generate"):
        gr.Markdown(
            f"Sample from `{model_dir}`: each token appears as it is chosen, with the model's top alternatives."
        )
        prompt = gr.Textbox(label="Prompt", value="The for statement", lines=2, elem_id="gen-prompt")
        with gr.Row():
            max_new = gr.Slider(1, 200, value=40, step=1, label="Max new tokens")
            temperature = gr.Slider(0, 2, value=0.8, step=0.05, label="Temperature (0 = greedy)")
            top_k = gr.Slider(0, 200, value=50, step=1, label="Top-k (0 = off)")
            top_p = gr.Slider(0.05, 1, value=0.95, step=0.05, label="Top-p")
            seed = gr.Number(value=0, precision=0, minimum=0, maximum=2**32 - 1, label="Seed")
        go = gr.Button("Generate", variant="primary", elem_id="gen-go")
        output = gr.Textbox(label="Text", lines=5, elem_id="gen-output")
        steps = gr.Dataframe(
            headers=["token", "probability", "top alternatives"], label="Each generated token", wrap=True
        )
        go.click(
            generate, [prompt, max_new, temperature, top_k, top_p, seed], [output, steps], api_name="generate"
        )
        with gr.Accordion("Attention", open=False):
            with gr.Row():
                layer, head = _pick_one(n_layer, "Layer"), _pick_one(n_head, "Head")
            show = gr.Button("Show attention of the text above")
            plot = gr.Plot(label="Attention weights")
            show.click(heatmap, [output, layer, head], plot, api_name="attention")


def _nothing_typed(empty):
    """`empty`, with a notice on the page: the button seemed to do nothing for an empty box."""
    gr.Warning("Type some text first.")
    return empty


def _pick_one(count: int, label: str) -> gr.Component:
    """A slider over 0..count-1; a model with one layer (or head) has nothing to choose (a slider from 0 to 0
    is refused by Gradio, and the app did not start)."""
    if count > 1:
        return gr.Slider(0, count - 1, value=0, step=1, label=label)
    return gr.Number(0, precision=0, visible=False, label=label)


def build_models_app(
    classifier: str | None = None,
    text2text: str | None = None,
    causal: str | None = None,
    *,
    tagger: str | None = None,
    qa: str | None = None,
    images: Sequence[str] = (),
    title: str = "llmkit model playground",
) -> gr.Blocks:
    """A gr.Blocks with one tab per given model folder, headed by `title` (a Space passes its own).

    `tagger` is a token classifier folder, `qa` an extractive question-answering folder; `images` are image
    classifier, detector or segmenter folders, one tab each.
    """
    from llmkit.ui.qa import qa_tab
    from llmkit.ui.vision import image_tab

    if not (classifier or text2text or causal or tagger or qa or images):
        raise ValueError("give at least one model folder")
    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"## {title}")
        if causal:
            generation_tab(causal)
        if classifier:
            classifier_tab(classifier)
        if tagger:
            tagger_tab(tagger)
        if qa:
            qa_tab(qa)
        if text2text:
            text2text_tab(text2text)
        for folder in images:
            image_tab(folder)
    return name_bad_inputs(demo)
