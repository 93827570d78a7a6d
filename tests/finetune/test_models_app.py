"""The model playground answers over HTTP: classification, text-to-text, streamed generation, attention."""

import pytest

from llmkit.ui.models import build_models_app


@pytest.fixture(scope="module")
def app_url(tiny_run, classifier, small_t5_dir):
    demo = build_models_app(
        classifier=str(classifier[0]), text2text=str(small_t5_dir), causal=str(tiny_run[0])
    )
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo.local_url
    demo.close()


def test_every_tab_answers(app_url, small_t5_dir):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    probs = client.predict("The puppy wagged its tail.", api_name="/classify")
    assert probs["label"] == "animals" and len(probs["confidences"]) == 2

    from llmkit.finetune.seq2seq import text2text

    out = client.predict("digits: three", 8, 1, api_name="/text2text")
    assert out == text2text(
        small_t5_dir, "digits: three", max_new_tokens=8, num_beams=1
    )  # the tab serves that model

    text, steps = client.predict("The for statement", 6, 0, 50, 0.95, 0, api_name="/generate")
    assert text.startswith("The for statement") and len(steps["data"]) == 6
    token, prob, alternatives = steps["data"][0]
    assert 0 < float(prob) <= 1 and alternatives.count(",") >= 4  # five alternatives with probabilities

    plot = client.predict("The for statement is used", 1, 1, api_name="/attention")
    assert plot["type"] == "matplotlib" and len(plot["plot"]) > 1000  # an image was drawn

    text, steps = client.predict("", 6, 0.8, 50, 0.95, 0, api_name="/generate")
    assert "Type a prompt" in text


def test_odd_generation_inputs_get_a_message_not_a_bare_error(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    # longer than the model's context: the user is told to shorten it (it was an "Error" with no text)
    with pytest.raises(Exception, match="shorten it to at most"):
        client.predict("word " * 500, 6, 0.8, 50, 0.95, 0, api_name="/generate")
    text, steps = client.predict("The for statement", 3, 0.8, 50, 0.95, None, api_name="/generate")
    assert text.startswith("The for statement") and len(steps["data"]) == 3  # a cleared Seed box samples
    with pytest.raises(Exception, match="greater than maximum"):  # torch.manual_seed overflowed
        client.predict("The for statement", 3, 0.8, 50, 0.95, 2**70, api_name="/generate")
    text, _ = client.predict(None, 3, 0.8, 50, 0.95, 0, api_name="/generate")
    assert "Type a prompt" in text
    assert not client.predict(None, api_name="/classify").get("label")
    assert client.predict(None, 1, 0, api_name="/attention") is None


def test_a_one_layer_one_head_model_gets_its_attention_tab(tiny_run, tmp_path):
    # Gradio refuses a slider from 0 to 0: the app (and a Space built on such a model) did not start
    from gradio_client import Client
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_run[0])
    config = GPT2Config(n_layer=1, n_head=1, n_embd=16, n_positions=64, vocab_size=len(tokenizer))
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "one")
    tokenizer.save_pretrained(tmp_path / "one")
    demo = build_models_app(causal=str(tmp_path / "one"))
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        plot = Client(demo.local_url, verbose=False).predict("The for statement", 0, 0, api_name="/attention")
        assert plot["type"] == "matplotlib"
    finally:
        demo.close()


def test_inputs_gradio_cannot_read_are_named(app_url):
    # Gradio refused these before the app's code ran, with a bare "Error" (its message is hidden by default)
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    with pytest.raises(
        Exception, match="input 2, 'Max new tokens': it got 'abc', and takes a number from 1 to 200"
    ):
        client.predict("The for statement", "abc", 0.8, 50, 0.95, 0, api_name="/generate")
    with pytest.raises(Exception, match="input 3, 'Beams': it got \\[1\\], and takes a number from 1 to 8"):
        client.predict("digits: three", 8, [1], api_name="/text2text")


def test_a_classifier_folder_changed_while_the_app_runs_is_named(classifier, tiny_run, tmp_path):
    # the tab reloads a folder that changed (a run trained again); deleted, cut short or replaced by another kind
    # of model, it was a bare "Error", or a GPT-2's random head answering LABEL_0/LABEL_1
    import shutil

    from gradio_client import Client

    folder = tmp_path / "clf"
    shutil.copytree(classifier[0], folder, ignore=shutil.ignore_patterns("checkpoint-*"))
    demo = build_models_app(classifier=str(folder))
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        assert client.predict("The puppy wagged its tail.", api_name="/classify")["label"] == "animals"
        shutil.rmtree(folder)
        with pytest.raises(Exception, match="changed since the app started .*there is no such folder"):
            client.predict("The puppy wagged its tail.", api_name="/classify")
        shutil.copytree(tiny_run[0], folder)
        with pytest.raises(Exception, match="holds a GPT2LMHeadModel, not a text classifier"):
            client.predict("The puppy wagged its tail.", api_name="/classify")
        shutil.rmtree(folder)
        shutil.copytree(classifier[0], folder, ignore=shutil.ignore_patterns("checkpoint-*"))
        (folder / "config.json").write_text('{"architec')  # a save caught half-way
        with pytest.raises(Exception, match="is not a model's config"):
            client.predict("The puppy wagged its tail.", api_name="/classify")
    finally:
        demo.close()


def test_folders_of_the_wrong_kind_say_what_they_hold(tiny_run, tmp_path):
    import shutil

    from llmkit.errors import UserError
    from llmkit.ui.checks import check_model_folder

    tokenizer = tmp_path / "tokenizer"
    tokenizer.mkdir()
    shutil.copy(tiny_run[0] / "tokenizer.json", tokenizer)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    classic = tmp_path / "cnn"
    classic.mkdir()
    (classic / "config.json").write_text('{"architecture": "lenet", "kwargs": {}}')
    # each was "not a model folder (no config.json)", or failed on loading with "names no known model_type"
    with pytest.raises(UserError, match="holds a tokenizer but no model"):
        check_model_folder(str(tokenizer))
    with pytest.raises(UserError, match="holds a LoRA adapter without its model"):
        check_model_folder(str(adapter))
    with pytest.raises(UserError, match="is a classic baseline \\(lenet\\).*llmkit app classic"):
        check_model_folder(str(classic))
    check_model_folder(str(tiny_run[0]))


def test_the_attention_map_of_a_long_text_shows_its_end(tiny_run):
    # its last 400 characters were cut to the context from the right: the map of a 64-token model showed tokens
    # from the middle of the text, under "Show attention of the text above"
    demo = build_models_app(causal=str(tiny_run[0]))
    heatmap = next(f.fn for f in demo.fns.values() if f.api_name == "attention")
    text = "The for statement " + " ".join(f"w{i}" for i in range(300))
    ax = heatmap(text, 0, 0).axes[0]
    shown = "".join(t.get_text() for t in ax.get_xticklabels())
    assert shown.endswith("w299") and "the last 64 of" in ax.get_title()
    assert heatmap("The for statement", 0, 0).axes[0].get_title() == "layer 0, head 0"


def test_generated_characters_of_several_bytes_are_shown_whole(tiny_run, tmp_path):
    # each token was decoded alone and appended: every byte of an é, an emoji or a CJK character showed as U+FFFD
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_run[0])
    pieces = tokenizer("é")["input_ids"]
    assert len(pieces) == 2 and "\ufffd" in tokenizer.decode(pieces[:1])  # byte-level BPE: é is two tokens
    config = GPT2Config(
        n_layer=1, n_head=1, n_embd=16, n_positions=64, vocab_size=len(tokenizer), tie_word_embeddings=False
    )
    model = GPT2LMHeadModel(config)
    with torch.no_grad():  # whatever the input, the model picks one of é's two bytes, half and half
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[pieces] = 1.0
    model.save_pretrained(tmp_path / "bytes")
    tokenizer.save_pretrained(tmp_path / "bytes")
    demo = build_models_app(causal=str(tmp_path / "bytes"))
    generate = next(f.fn for f in demo.fns.values() if f.api_name == "generate")
    text, rows = list(generate("Caf", 20, 1.0, 2, 1.0, 0))[-1]
    assert len(rows) == 20 and "é" in text


def test_fewer_tokens_than_asked_are_explained(tiny_run):
    # the model's context cut the 200 asked to what was left after the prompt, said only in the server's log
    demo = build_models_app(causal=str(tiny_run[0]))
    generate = next(f.fn for f in demo.fns.values() if f.api_name == "generate")
    with pytest.warns(UserWarning, match="At most 6. new tokens, not 200: the prompt's . tokens leave"):
        _, rows = list(generate("The for", 200, 0.8, 50, 0.95, 0))[-1]
    assert len(rows) < 64
