"""The classic-baselines app: draw a digit for the CNN, generate digits, sample the char-LSTM, watch an MLP learn."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import torch

from llmkit.classic.data import make_2d, resize
from llmkit.classic.diffusion import sample as diffusion_sample
from llmkit.classic.mlp_numpy import ACTIVATIONS, NumpyMLP, Optimizer
from llmkit.classic.registry import load_classic
from llmkit.classic.schedulers import load_scheduler
from llmkit.errors import UserError
from llmkit.plots import image_grid, plt
from llmkit.ui.curriculum import curriculum_tabs
from llmkit.ui.inputs import name_bad_inputs


def sketch_to_tensor(sketch, size: int = 16) -> torch.Tensor:
    """A drawing (Gradio's editor value, or an array) -> a (1, 1, size, size) digit: bright strokes on black, centred."""
    if isinstance(sketch, dict):
        sketch = sketch.get("composite") if sketch.get("composite") is not None else sketch.get("background")
    if sketch is None:
        raise gr.Error("Draw a digit first.")
    a = np.asarray(sketch, dtype=np.float32)
    if a.ndim == 3 and a.shape[2] == 4 and a[..., 3].max() > 0 and a[..., 3].min() < 255:
        ink = a[..., 3] / 255.0  # strokes on a transparent canvas
    else:
        gray = a[..., :3].mean(axis=2) if a.ndim == 3 else a
        # ink is what differs from the background (the median): dark on white, light on black, either on grey
        # paper (there the whole canvas counted as ink, the stroke was lost, and a plain grey canvas got a digit)
        ink = np.abs(gray - np.median(gray)) / 255.0
    if ink.max() < 0.1:
        raise gr.Error("The canvas is empty: draw a digit first.")
    ink = ink / ink.max()  # the digits the model learned are full-strength strokes, whatever the paper
    rows, cols = np.where(ink > 0.1)
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    side = int(max(ink.shape) * 1.4)  # a margin like the digits dataset's
    canvas = np.zeros((side, side), dtype=np.float32)
    r0, c0 = (side - ink.shape[0]) // 2, (side - ink.shape[1]) // 2
    canvas[r0 : r0 + ink.shape[0], c0 : c0 + ink.shape[1]] = ink
    return resize(torch.from_numpy(canvas)[None, None], size)


# A Gradio event handler: Gradio passes the input components' values positionally, in this order.
def train_2d(
    dataset: str, activation: str, optimizer: str, lr: float, hidden: int, epochs: int, seed: int = 0
):
    """Train the NumPy MLP on a 2-D set; return a figure of its decision boundary and loss curve."""
    if lr is None:  # the box was cleared
        raise gr.Error("Set a learning rate first (e.g. 0.01).")
    x, y = make_2d(dataset, seed=seed)
    net = NumpyMLP([2, int(hidden), int(hidden), 2], activation, seed=seed)
    # a learning rate too large overflows the weights: said in the titles, not as NumPy warnings in the terminal
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        history = net.fit(x, y, Optimizer(optimizer, lr), epochs=int(epochs), batch_size=32, seed=seed)
        lo, hi = x.min(0) - 0.3, x.max(0) + 0.3
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 150), np.linspace(lo[1], hi[1], 150))
        zz = net.forward(np.c_[gx.ravel(), gy.ravel()]).argmax(1).reshape(gx.shape)
        accuracy = (net.predict(x) == y).mean()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4), dpi=90)
    a.contourf(gx, gy, zz, alpha=0.3, cmap="coolwarm")
    a.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=12, edgecolors="k", linewidths=0.3)
    a.set(title=f"decision boundary — training accuracy {accuracy:.2f}")
    b.plot(range(1, len(history) + 1), history)
    bad = np.flatnonzero(~np.isfinite(history))
    if len(bad):  # the curve just stopped and the accuracy was that of a NaN network: say what happened
        loss_title = f"loss diverged ({history[bad[0]]}) at epoch {bad[0] + 1}: try a smaller learning rate"
    else:
        loss_title = "training loss"
    b.set(title=loss_title, xlabel="epoch", yscale="log")
    fig.tight_layout()
    return fig


def build_classic_app(
    *,
    cnn: str | None = None,
    gan: str | None = None,
    vae: str | None = None,
    diffusion: str | None = None,
    char_rnn: str | None = None,
    dbn: str | None = None,
    word2vec: str | None = None,
    hp_search: str | None = None,
    title: str | None = None,
) -> gr.Blocks:
    """One tab per given model folder, plus the MLP playground (which needs none), headed by `title`."""
    if title is None:  # name only what this app has loaded
        given = {"CNN": cnn, "GAN": gan, "VAE": vae, "diffusion": diffusion, "char-LSTM": char_rnn}
        given |= {"DBN": dbn, "word2vec": word2vec}
        names = [name for name, folder in given.items() if folder]
        title = f"The classics: {', '.join(names + ['an MLP you can watch learn'])}"
    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"## {title}")
        if cnn:
            _draw_tab(cnn)
        generators = {
            name: folder for name, folder in (("GAN", gan), ("VAE", vae), ("Diffusion", diffusion)) if folder
        }
        if generators:
            _generate_tab(generators)
        if char_rnn:
            _char_rnn_tab(char_rnn)
        _mlp_tab()
        curriculum_tabs(dbn, word2vec, hp_search)
    return name_bad_inputs(demo)


# the app's flag -> the architectures its tab can serve, and the command that trains them
TAB_MODELS = {
    "cnn": (("lenet", "resnet"), "train-cnn"),
    "gan": (("dcgan",), "train-gan"),
    "vae": (("vae",), "train-vae"),
    "diffusion": (("ddpm-unet",), "train-diffusion"),
    "char_rnn": (("char-rnn", "char-lstm", "char-gru"), "train-rnn"),
}


def _load(folder: str, flag: str):
    """(model, config) of the folder given as --flag, refused unless its tab can serve it: a VAE given as --gan
    (or any run as another tab's) opened, then failed at the first click; a CNN as --char_rnn was a KeyError."""
    architectures, command = TAB_MODELS[flag]
    # config.json is written at a run's end: a killed run was "not a classic recipe's output"
    if not (Path(folder) / "config.json").is_file():
        from llmkit.classic.checkpoints import newest_complete

        newest = newest_complete(Path(folder) / "checkpoints", announce=False)
        if newest:
            raise UserError(
                f"--{flag}: {folder} holds no finished model: its run stopped early ({newest[0].name}). Run its "
                f"training command again (`llmkit {command} --output_dir {folder}` with the flags it had) to "
                "finish it; it resumes from there."
            )
    try:
        return load_classic(folder, architectures)
    except UserError as err:
        raise UserError(f"--{flag}: {err} --{flag} takes the output_dir of `llmkit {command}`.") from None
    except Exception as err:  # a weights file cut short was safetensors' traceback
        raise _unreadable(flag, folder, err) from None


def _unreadable(flag: str, folder: str, err: Exception) -> UserError:
    """The error for a folder whose files cannot be read: the damaged weights named when that is why."""
    from llmkit.record import weights_problem

    damaged = weights_problem(folder)
    why = f"{damaged} (a save or copy cut short)" if damaged else f"{type(err).__name__}: {err}"
    return UserError(
        f"--{flag}: {folder} could not be loaded: {why}; copy the folder again or train it again."
    )


def _schedulers(folder: str) -> dict:
    """The DDIM and DDPM schedulers of a diffusion run; a scheduler_config.json cut short was a JSON traceback."""
    try:
        return {kind: load_scheduler(folder, kind) for kind in ("ddim", "ddpm")}
    except ValueError as err:  # JSONDecodeError, or a config the scheduler refuses
        raise UserError(
            f"--diffusion: {Path(folder) / 'scheduler_config.json'} cannot be read ({err}; a save or copy cut "
            "short?); copy the folder again or train it again."
        ) from None


def _draw_tab(cnn: str) -> None:
    model, config = _load(cnn, "cnn")
    size = config.get("image_size") or config["args"].get("image_size") or 16

    def classify(sketch):
        with torch.no_grad():
            probs = model(sketch_to_tensor(sketch, size)).softmax(-1)[0]
        return {str(i): float(p) for i, p in enumerate(probs)}

    with gr.Tab("Draw a digit"):
        with gr.Row():
            # a fixed-width column and one layer: stretched in a row, the editor draws its
            # square canvas as a narrow strip at the right edge (seen in Chromium)
            pad = gr.Sketchpad(
                label="Draw a digit (0-9)",
                type="numpy",
                canvas_size=(280, 280),
                fixed_canvas=True,
                layers=False,
                height=360,
                width=360,
                scale=0,
                min_width=360,
            )
            label = gr.Label(num_top_classes=10, label=f"{config['architecture']} says")
        gr.Button("Classify", variant="primary").click(classify, pad, label, api_name="classify")


def _generate_tab(generators: dict[str, str]) -> None:
    loaded = {name: _load(folder, name.lower()) for name, folder in generators.items()}
    diffusion = generators.get("Diffusion")
    schedulers = _schedulers(diffusion) if diffusion else {}

    # A Gradio event handler: the inputs arrive positionally.
    def generate(kind, seed, n, steps, sampler):
        model, config = loaded[kind]
        g = torch.Generator().manual_seed(_seed(seed))
        n = int(n)
        with torch.no_grad():
            if kind == "GAN":
                labels = torch.arange(n) % 10 if model.label is not None else None
                return image_grid(model(torch.randn(n, model.z_dim, generator=g), labels), scale=8), None
            if kind == "VAE":
                return image_grid(model.sample(n, g), scale=8), None
            scheduler = schedulers[sampler]
            steps = int(steps) if sampler == "ddim" else None  # DDPM visits every training step
            images, snapshots = diffusion_sample(
                model, scheduler, n, size=config["image_size"], channels=1, steps=steps, generator=g, keep=8
            )
            return image_grid(images, scale=8), image_grid(
                torch.cat([s[:1] for s in snapshots]), nrow=len(snapshots), scale=8
            )

    with gr.Tab("Generate digits"):
        with gr.Row():
            kind = gr.Radio(list(generators), value=next(iter(generators)), label="Model")
            seed = seed_box()
            n = gr.Slider(8, 64, value=32, step=8, label="Images")
            steps = gr.Slider(5, 200, value=50, step=5, label="Diffusion steps (DDIM)")
            sampler = gr.Radio(["ddim", "ddpm"], value="ddim", label="Diffusion sampler")
        go = gr.Button("Generate", variant="primary")
        grid = gr.Image(label="Samples", image_mode="L")
        denoise = gr.Image(label="Diffusion, step by step (noise → digit)", image_mode="L")
        go.click(generate, [kind, seed, n, steps, sampler], [grid, denoise], api_name="generate")


def seed_box() -> gr.Number:
    """A Seed box whose values torch.Generator takes (a larger one overflowed it)."""
    return gr.Number(value=0, precision=0, minimum=0, maximum=2**32 - 1, label="Seed")


def _seed(value) -> int:
    return 0 if value is None else int(value)  # a cleared Seed box samples as seed 0


def _char_rnn_tab(char_rnn: str) -> None:
    rnn, config = _load(char_rnn, "char_rnn")
    chars = config["chars"]
    index = {c: i for i, c in enumerate(chars)}

    def sample_text(prefix, length, temperature, seed):
        prefix = prefix or ""
        unknown = sorted({c for c in prefix if c not in index})
        if unknown:  # they were dropped without a word: the sample continued a text other than the one shown
            gr.Warning(
                f"The model never saw {', '.join(map(repr, unknown[:10]))}{' …' if len(unknown) > 10 else ''} in "
                "training, so the sample continues your text without them."
            )
        ids = [index[c] for c in prefix if c in index] or [0]
        out = rnn.sample(ids, int(length), float(temperature), torch.Generator().manual_seed(_seed(seed)))
        return prefix + "".join(chars[i] for i in out)

    with gr.Tab("Char-LSTM"):
        prefix = gr.Textbox(value="The ", label="Start with")
        with gr.Row():
            length = gr.Slider(10, 1000, value=300, step=10, label="Characters")
            temperature = gr.Slider(0.1, 2, value=0.8, step=0.05, label="Temperature")
            rseed = seed_box()
        text = gr.Textbox(label="Sample", lines=8)
        gr.Button("Sample", variant="primary").click(
            sample_text, [prefix, length, temperature, rseed], text, api_name="sample_text"
        )


def _mlp_tab() -> None:
    with gr.Tab("Watch an MLP learn"):
        with gr.Row():
            data = gr.Radio(["moons", "circles", "xor", "spirals"], value="moons", label="Data")
            act = gr.Radio([a for a in ACTIVATIONS if a != "identity"], value="tanh", label="Activation")
            opt = gr.Radio(["sgd", "momentum", "rmsprop", "adam"], value="adam", label="Optimizer")
        with gr.Row():
            lr = gr.Number(value=0.01, minimum=0, maximum=10, label="Learning rate")
            hidden = gr.Slider(2, 64, value=16, step=1, label="Hidden units per layer")
            epochs = gr.Slider(10, 500, value=150, step=10, label="Epochs")
        plot = gr.Plot()
        gr.Button("Train", variant="primary").click(
            train_2d, [data, act, opt, lr, hidden, epochs], plot, api_name="train_mlp"
        )
