"""The classics app's curriculum tabs: a DBN's filters, a word-embedding projector, a hyperparameter search."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import numpy as np

from llmkit.errors import UserError
from llmkit.plots import plt


def projection(vectors: np.ndarray, vocab, words: list[str]):
    """A 2-D PCA projection of the chosen words' vectors, as a figure."""
    known = [w for w in words if w in vocab.index]
    if len(known) < 2:
        raise gr.Error(
            f"give at least two words from the vocabulary (unknown: {[w for w in words if w not in vocab.index]})."
        )
    x = vectors[[vocab.index[w] for w in known]]
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    fig, ax = plt.subplots(figsize=(6, 5), dpi=90)
    ax.scatter(xy[:, 0], xy[:, 1])
    for (px, py), w in zip(xy, known):
        ax.annotate(w, (px, py), textcoords="offset points", xytext=(4, 4))
    ax.set(title="PCA of word vectors", xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def _recipe_json(folder: str, name: str, flag: str, want: str, key: str) -> dict:
    """A JSON file of a recipe's output, holding `key`; UserError naming the flag and what to pass (`want`)
    otherwise (a missing or foreign file was a FileNotFoundError or KeyError traceback)."""
    try:
        data = json.loads((Path(folder) / name).read_text())
    except (OSError, ValueError):
        raise UserError(f"--{flag} {folder} holds no readable {name}; pass {want}.") from None
    if not isinstance(data, dict) or key not in data:
        raise UserError(f"--{flag} {folder}: its {name} has no {key!r}; pass {want}.")
    return data


def curriculum_tabs(dbn: str | None, word2vec: str | None, hp_search: str | None) -> None:
    """Tabs for the DBN's filters, the embedding projector and a hyperparameter search's trials."""
    if dbn:
        metrics = _recipe_json(
            dbn, "metrics.json", "dbn", "the output_dir of recipes/train_dbn.py", "random_init_eval_accuracy"
        )
        with gr.Tab("RBM / DBN"):
            gr.Markdown(
                f"Test accuracy after fine-tuning: **{metrics['eval_accuracy']:.3f}** with RBM pretraining, "
                f"**{metrics['random_init_eval_accuracy']:.3f}** from random initialisation."
            )
            with gr.Row():
                _picture(Path(dbn) / "filters.png", "First-layer filters (weights of 64 hidden units)")
                _picture(
                    Path(dbn) / "reconstructions.png", "Digits (top) and the RBM's reconstructions (bottom)"
                )
    if word2vec:
        from llmkit.classic.word2vec import load_text_format, neighbours

        if not (Path(word2vec) / "vectors.txt").is_file():
            raise UserError(
                f"--word2vec {word2vec} holds no vectors.txt; pass the output_dir of recipes/train_word2vec.py."
            )
        try:
            vectors, vocab = load_text_format(Path(word2vec) / "vectors.txt")
        except (ValueError, IndexError) as err:  # a file cut short, or another text file: was a traceback
            raise UserError(
                f"--word2vec {word2vec}: its vectors.txt is not word2vec's text format ({err}; a save or copy cut "
                "short?); pass the output_dir of recipes/train_word2vec.py."
            ) from None
        with gr.Tab("Word embeddings"):
            words = gr.Textbox(
                value="list, dict, tuple, set, file, open, read, write, thread, lock",
                label="Words to project",
            )
            plot = gr.Plot()
            gr.Button("Project", variant="primary").click(
                lambda text: projection(
                    vectors, vocab, [w.strip().lower() for w in (text or "").split(",") if w.strip()]
                ),
                words,
                plot,
                api_name="project",
            )
            word = gr.Textbox(value="exception", label="Neighbours of")
            near = gr.Dataframe(headers=["word", "cosine"])
            gr.Button("Find neighbours").click(
                lambda w: (
                    [[n, round(s, 3)] for n, s in neighbours(vectors, vocab, (w or "").strip().lower(), 10)]
                    if (w or "").strip().lower() in vocab.index
                    else [[f"{w or ''!r} is not in the vocabulary", 0.0]]
                ),
                word,
                near,
                api_name="neighbours",
            )
    if hp_search:
        data = _recipe_json(
            hp_search,
            "trials.json",
            "hp_search",
            "the hp_search/ folder of a --hp_search_trials run",
            "best",
        )
        with gr.Tab("Hyperparameter search"):
            gr.Markdown(
                f"Objective `{data['objective']}` ({data['direction']}); best **{data['best']['value']:.4f}** with `{data['best']['params']}`."
            )
            _picture(Path(hp_search) / "trials.png", "Trials")
            gr.Dataframe(
                [[t["number"], t["state"], t["value"], json.dumps(t["params"])] for t in data["trials"]],
                headers=["trial", "state", data["objective"], "parameters"],
            )


def _picture(path: Path, label: str) -> None:
    """The run's picture, or a line saying it is missing (a missing file was a broken image and a 403 error)."""
    if path.is_file():
        gr.Image(str(path), label=label)
    else:
        gr.Markdown(f"*{label}: {path.name} is missing from {path.parent}.*")
