"""Inputs an app cannot read are named, with what it takes, instead of Gradio's bare "Error".

Gradio checks and converts each input (a chat history's shape, an uploaded image, a slider's number) before
an app's handler runs. When that fails it raises a plain exception, which a page or `gradio_client` sees only
as "The upstream Gradio app has raised an exception" unless the app was launched with show_error=True (which
would also show every internal error). A Space launches the builder's Blocks itself, so the builders wrap
the step here and a bad input always comes back as a gr.Error that names the input and what it takes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

if TYPE_CHECKING:
    from gradio.blocks import Block, BlockFunction


def expected_value(block: Block) -> str:
    """What an input component takes, in words a user of the page or of gradio_client can act on."""
    if isinstance(block, gr.Chatbot):
        return (
            "a list of messages, each {'role': 'user' or 'assistant', 'content': text} ([] to start a chat)"
        )
    if isinstance(block, gr.ImageEditor):  # gr.Sketchpad too
        return (
            "a drawing: {'background': image, 'layers': [], 'composite': image}, each image handle_file(path)"
        )
    if isinstance(block, gr.Image):
        return "an image file (PNG, JPEG, WebP, GIF or BMP): handle_file(path) from gradio_client"
    if isinstance(block, gr.File):
        return "files: handle_file(path) from gradio_client"
    if isinstance(block, (gr.Slider, gr.Number)):
        low, high = getattr(block, "minimum", None), getattr(block, "maximum", None)
        if low is not None and high is not None:
            return f"a number from {low:g} to {high:g}"
        return "a number"
    if isinstance(block, (gr.Radio, gr.Dropdown)):
        return f"one of {[value for _, value in block.choices]}"
    if isinstance(block, gr.Textbox):
        return "text"
    return f"a {block.get_block_name()} value"


def _culprit(block_fn: BlockFunction, inputs: list, err: Exception) -> int | None:
    """The index of the input Gradio could not read: named in its message, or the first its data model refuses."""
    found = re.search(r"component at index (\d+)", str(err))
    if found:
        return int(found.group(1))
    for i, (block, value) in enumerate(zip(block_fn.inputs, inputs)):
        model = getattr(block, "data_model", None)
        if model is None or value is None:
            continue
        try:
            model.model_validate(value)
        except Exception:
            return i
    return None


def _shown(value) -> str:
    """A value as the message quotes it: an uploaded file by its name (its server path means nothing to the user)."""
    if isinstance(value, dict):  # a file, or a drawing whose background and composite are files
        for file in (value, *value.values()):
            if isinstance(file, dict) and (file.get("orig_name") or file.get("path")):
                return f"the file {Path(str(file.get('orig_name') or file['path'])).name!r}"
    text = repr(value)
    return text if len(text) <= 120 else text[:120] + "…"


def bad_input_message(block_fn: BlockFunction, inputs: list, err: Exception) -> str:
    """One line naming the unreadable input, the value it got and what it takes (or what every input takes)."""
    where = f"/{block_fn.api_name}" if block_fn.api_name else "this button"
    i = _culprit(block_fn, inputs, err)
    if i is None or i >= len(block_fn.inputs):
        wants = "; ".join(
            f"{n + 1}. {b.label or b.get_block_name()}: {expected_value(b)}"
            for n, b in enumerate(block_fn.inputs)
        )
        return f"{where} could not read its inputs ({type(err).__name__}). It takes, in order: {wants}."
    block = block_fn.inputs[i]
    got = _shown(inputs[i]) if i < len(inputs) else "nothing"
    return (
        f"{where} could not read input {i + 1}, {block.label or block.get_block_name()!r}: it got {got}, "
        f"and takes {expected_value(block)}."
    )


def name_bad_inputs(demo: gr.Blocks) -> gr.Blocks:
    """Make `demo` answer an input Gradio cannot read with a message naming it (see the module docstring)."""
    read = demo.preprocess_data  # gradio's own step: checks the inputs' count and converts each one

    async def preprocess_data(block_fn, inputs, state, explicit_call=False):
        try:
            return await read(block_fn, inputs, state, explicit_call)
        except gr.Error:  # already a message for the user (a slider's bounds, a radio's choices)
            raise
        except Exception as err:
            raise gr.Error(bad_input_message(block_fn, list(inputs), err)) from err

    demo.preprocess_data = preprocess_data  # an instance attribute: this Blocks only
    return demo
