"""The classics app: handlers return the right types, and every tab answers through gradio_client."""

import numpy as np
import pytest

from llmkit.classic.data import make_2d
from llmkit.recipes import train_diffusion, train_gan, train_rnn, train_vae
from llmkit.ui.classic import build_classic_app, sketch_to_tensor, train_2d
from tests.helpers import CHROMIUM_FLAGS, require_chromium


@pytest.fixture(scope="module")
def folders(tmp_path_factory, cnn_dir, generative_runs):
    root = tmp_path_factory.mktemp("classic-app")
    gan, vae, diffusion = (generative_runs[r][0] for r in (train_gan, train_vae, train_diffusion))
    train_rnn.main(
        [
            "--output_dir",
            str(root / "rnn"),
            "--num_train_epochs",
            "1",
            "--max_chars",
            "20000",
            "--hidden",
            "32",
            "--layers",
            "1",
        ]
    )
    return {
        "cnn": str(cnn_dir[0]),
        "gan": str(gan),
        "vae": str(vae),
        "diffusion": str(diffusion),
        "char_rnn": str(root / "rnn"),
    }


def test_a_drawing_becomes_a_centred_digit():
    canvas = np.full((280, 280, 3), 255, dtype=np.uint8)
    canvas[60:220, 130:150] = 0  # a dark vertical stroke on white: a "1"
    digit = sketch_to_tensor({"composite": canvas}, 16)
    # bright ink, dark margins
    assert digit.shape == (1, 1, 16, 16) and digit.max() > 0.9 and digit[0, 0, :, :3].max() < 0.1


def test_mlp_playground_learns_what_a_line_cannot():
    x, y = make_2d("spirals", n=100)
    assert x.shape == (100, 2) and set(y) == {0, 1}
    fig = train_2d("xor", "tanh", "adam", 0.05, 8, 150)
    accuracy = float(fig.axes[0].get_title().rsplit(" ", 1)[-1])
    assert len(fig.axes) == 2 and accuracy >= 0.95  # a hidden layer separates XOR
    linear = train_2d("xor", "identity", "adam", 0.05, 8, 150)
    assert float(linear.axes[0].get_title().rsplit(" ", 1)[-1]) < 0.8  # a linear model cannot


def test_every_tab_answers_over_http(folders):
    from gradio_client import Client

    demo = build_classic_app(**folders)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        canvas = np.full((280, 280, 3), 255, dtype=np.uint8)
        canvas[60:220, 130:150] = 0
        from PIL import Image

        path = folders["cnn"] + "/drawing.png"
        Image.fromarray(canvas).save(path)
        from gradio_client import handle_file

        probs = client.predict(
            {"background": handle_file(path), "layers": [], "composite": handle_file(path)},
            api_name="/classify",
        )
        assert len(probs["confidences"]) == 10
        for kind in ("GAN", "VAE", "Diffusion"):
            grid, steps = client.predict(kind, 1, 16, 10, "ddim", api_name="/generate")
            assert grid and (steps if kind == "Diffusion" else True)
        text = client.predict("The ", 40, 0.8, 0, api_name="/sample_text")
        assert text.startswith("The ") and len(text) == 44
        assert client.predict("moons", "relu", "adam", 0.01, 8, 20, api_name="/train_mlp") is not None
    finally:
        demo.close()


def test_curriculum_tabs_answer(tmp_path, tiny_run):
    from gradio_client import Client

    from llmkit.classic.word2vec import save_text_format, train_word2vec
    from llmkit.recipes import train_dbn
    from tests.classic.test_curriculum import _capitals_corpus

    train_dbn.main(
        ["--output_dir", str(tmp_path / "dbn"), "--pretrain_epochs", "1", "--num_train_epochs", "1"]
    )
    model, vocab, *_ = train_word2vec(
        _capitals_corpus(500), dim=8, window=2, min_count=1, epochs=1, subsample=0
    )
    (tmp_path / "w2v").mkdir()
    save_text_format(model.vectors(), vocab, tmp_path / "w2v" / "vectors.txt")
    demo = build_classic_app(dbn=str(tmp_path / "dbn"), word2vec=str(tmp_path / "w2v"))
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        assert client.predict("paris, france, rome, italy", api_name="/project") is not None
        rows = client.predict("paris", api_name="/neighbours")["data"]
        assert len(rows) == 10 and rows[0][0] != "paris"
        assert "not in the vocabulary" in client.predict("zebra", api_name="/neighbours")["data"][0][0]
    finally:
        demo.close()


@pytest.mark.browser
def test_draw_a_digit_in_a_real_browser(cnn_dir, tmp_path):
    """The pad is a square a person can draw in; a stroke drawn in its middle gets classified."""
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    demo = build_classic_app(cnn=str(cnn_dir[0]))
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(demo.local_url, wait_until="load")
            heading = page.get_by_role("heading").first
            heading.wait_for()
            assert (
                heading.inner_text() == "The classics: CNN, an MLP you can watch learn"
            )  # only what is loaded
            box = page.locator("canvas").first.bounding_box()
            assert abs(box["width"] - box["height"]) < 0.1 * box["height"], box  # square, not a strip
            page.get_by_role("button", name="Brush").first.click()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x, y - 80)
            page.mouse.down()
            for i in range(1, 21):  # a vertical stroke through the middle: a "1"
                page.mouse.move(x, y - 80 + 8 * i)
            page.mouse.up()
            page.get_by_role("button", name="Classify").click()
            top = page.locator("[data-testid=label-output-value]")
            top.wait_for(timeout=30_000)
            assert top.inner_text().strip() in list("0123456789")
            page.screenshot(path=str(tmp_path / "draw-a-digit.png"))
            browser.close()
    finally:
        demo.close()


def test_cleared_or_huge_number_boxes_get_a_message(tmp_path):
    from gradio_client import Client

    argv = ["--output_dir", str(tmp_path / "rnn"), "--num_train_epochs", "1", "--max_chars", "20000"]
    train_rnn.main([*argv, "--hidden", "16", "--layers", "1"])
    demo = build_classic_app(char_rnn=str(tmp_path / "rnn"))
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        # a cleared Seed box samples as seed 0; a seed torch cannot take is refused by the box, not a crash
        assert client.predict("The ", 20, 0.8, None, api_name="/sample_text") == client.predict(
            "The ", 20, 0.8, 0, api_name="/sample_text"
        )
        with pytest.raises(Exception, match="greater than maximum"):
            client.predict("The ", 20, 0.8, 2**70, api_name="/sample_text")
        with pytest.raises(Exception, match="Set a learning rate"):  # a cleared box was a bare "Error"
            client.predict("moons", "relu", "adam", None, 8, 20, api_name="/train_mlp")
        with pytest.raises(Exception, match="less than minimum"):
            client.predict("moons", "relu", "adam", -1, 8, 20, api_name="/train_mlp")
    finally:
        demo.close()


def test_a_run_of_another_architecture_is_refused_naming_the_flag(folders):
    from llmkit.errors import UserError

    # a VAE given as --gan opened, then failed at the first click; a CNN as --char_rnn was a KeyError traceback
    with pytest.raises(UserError, match="--gan: .* holds a 'vae' model.*`llmkit train-gan`"):
        build_classic_app(gan=folders["vae"])
    with pytest.raises(UserError, match="--char_rnn: .* holds a 'lenet' model.*`llmkit train-rnn`"):
        build_classic_app(char_rnn=folders["cnn"])
    with pytest.raises(UserError, match="--cnn: .* holds a 'dcgan' model"):
        build_classic_app(cnn=folders["gan"])


def test_a_diverging_mlp_says_so():
    # the loss curve just stopped (NaN) under an "accuracy 0.47" of a broken network, and NumPy's overflow
    # warnings went to the terminal
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fig = train_2d("xor", "leaky_relu", "sgd", 10, 64, 100)
    assert "loss diverged (nan) at epoch" in fig.axes[1].get_title()
    assert "smaller learning rate" in fig.axes[1].get_title()
    assert train_2d("xor", "tanh", "adam", 0.05, 8, 20).axes[1].get_title() == "training loss"


def test_a_drawing_gradio_cannot_read_is_named(folders, tmp_path):
    from gradio_client import Client, handle_file

    demo = build_classic_app(cnn=folders["cnn"])
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        fake = tmp_path / "not-a-drawing.png"
        fake.write_text("text")
        pad = {"background": handle_file(fake), "layers": [], "composite": handle_file(fake)}
        with pytest.raises(
            Exception,
            match="/classify could not read input 1, 'Draw a digit.*got the file 'not-a-drawing.png'.*takes a drawing",
        ):
            client.predict(pad, api_name="/classify")
    finally:
        demo.close()


def test_characters_the_char_rnn_never_saw_are_named(folders):
    # they were dropped without a word, so the sample continued a text other than the one shown
    demo = build_classic_app(char_rnn=folders["char_rnn"])
    sample_text = next(f.fn for f in demo.fns.values() if f.api_name == "sample_text")
    with pytest.warns(UserWarning, match="never saw '😀'"):  # gr.Warning outside a request: a Python warning
        assert sample_text("😀The ", 10, 0.8, 0).startswith("😀The ")


def test_a_killed_run_points_at_finishing_it(folders, tmp_path):
    # config.json is written at a run's end: a killed run was "not a classic recipe's output (no config.json)"
    import shutil

    from llmkit.errors import UserError

    killed = tmp_path / "killed"
    shutil.copytree(folders["cnn"], killed)
    for name in ("config.json", "model.safetensors", "metrics.json"):
        (killed / name).unlink()
    with pytest.raises(
        UserError, match=r"--cnn: .* stopped early \(checkpoint-\d+\).*`llmkit train-cnn --output_dir"
    ):
        build_classic_app(cnn=str(killed))


def test_files_cut_short_are_named(folders, tmp_path):
    # safetensors' "invalid header length" and a JSONDecodeError were tracebacks at the app's start
    import shutil

    from llmkit.errors import UserError

    cnn, diffusion = tmp_path / "cnn", tmp_path / "ddpm"
    shutil.copytree(folders["cnn"], cnn, ignore=shutil.ignore_patterns("checkpoints"))
    with open(cnn / "model.safetensors", "r+b") as f:
        f.truncate(300)
    with pytest.raises(UserError, match="--cnn: .* could not be loaded: model.safetensors .*cut short"):
        build_classic_app(cnn=str(cnn))
    shutil.copytree(folders["diffusion"], diffusion, ignore=shutil.ignore_patterns("checkpoints"))
    (diffusion / "scheduler_config.json").write_text('{"_class_na')
    with pytest.raises(UserError, match="--diffusion: .*scheduler_config.json cannot be read"):
        build_classic_app(diffusion=str(diffusion))


def test_curriculum_folders_with_damaged_or_missing_files_are_named(tmp_path):
    from gradio_client import Client

    from llmkit.errors import UserError

    w2v = tmp_path / "w2v"
    w2v.mkdir()
    (w2v / "vectors.txt").write_text(
        "3 2\nhello 0.1 0.2\nworld 0.3\n"
    )  # cut short: was a ValueError traceback
    with pytest.raises(UserError, match="--word2vec .*vectors.txt is not word2vec's text format"):
        build_classic_app(word2vec=str(w2v))
    (w2v / "vectors.txt").write_text("2 2\nhello 0.1 0.2\nworld 0.3 0.1\n")
    dbn = tmp_path / "dbn"
    dbn.mkdir()
    (dbn / "metrics.json").write_text('{"eval_accuracy": 0.9, "random_init_eval_accuracy": 0.8}')
    demo = build_classic_app(dbn=str(dbn), word2vec=str(w2v))  # no filters.png: was a broken image (403)
    assert "filters.png is missing from" in str(demo.config)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:  # a cleared box (None over the API) was a bare "Error"
        assert (
            "not in the vocabulary"
            in Client(demo.local_url, verbose=False).predict(None, api_name="/neighbours")["data"][0][0]
        )
    finally:
        demo.close()


def test_a_digit_on_grey_paper_is_read_like_one_on_white():
    # on grey the whole canvas counted as ink: the stroke was lost and a plain grey canvas was classified
    import gradio as gr

    white = np.full((280, 280, 3), 255, dtype=np.uint8)
    white[60:220, 130:150] = 0
    for paper, ink in ((128, 0), (200, 40), (90, 250)):
        canvas = np.full((280, 280, 3), paper, dtype=np.uint8)
        canvas[60:220, 130:150] = ink
        assert np.allclose(sketch_to_tensor(canvas, 16), sketch_to_tensor(white, 16), atol=1e-5), paper
        with pytest.raises(gr.Error, match="canvas is empty"):
            sketch_to_tensor(np.full((280, 280, 3), paper, dtype=np.uint8), 16)
