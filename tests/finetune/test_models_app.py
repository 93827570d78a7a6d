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
