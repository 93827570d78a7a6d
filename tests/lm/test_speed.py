"""The fast pretraining path: padded vocabulary never generated, chunked/fused loss equal to transformers', throughput figures."""

import json
import subprocess
import sys
import time
import types

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, pipeline

import llmkit.lm.loss as loss_module
import llmkit.lm.throughput as throughput
from llmkit.data import builtin_texts, train_bpe_tokenizer
from llmkit.errors import UserError
from llmkit.lm.generate import Sampling, generate_text
from llmkit.lm.inspect import generate_steps
from llmkit.lm.loss import linear_cross_entropy, resolve_loss, use_fast_loss
from llmkit.lm.model import ModelArguments, build_gpt2, pad_vocabulary
from llmkit.lm.report import ReportCallback
from llmkit.lm.throughput import describe_mfu, device_peak, measured_matmul_peak, table_peak

SHAPE = dict(n_layer=1, n_head=2, n_embd=32, n_positions=64)


@pytest.fixture(scope="module")
def tokenizer():
    tok = train_bpe_tokenizer(builtin_texts()[:200], vocab_size=300)
    assert len(tok) % 64  # the model's vocabulary will really be padded
    return tok


def _tempt_padded_ids(model, n_real):
    """Make every padded id far likelier than any real token, so only suppression can keep them out."""
    with torch.no_grad():
        direction = torch.randn(model.config.n_embd)
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(direction)  # every position's final hidden state is `direction`
        model.transformer.wte.weight[:n_real] *= 0.01
        model.transformer.wte.weight[n_real:] = 5 * direction / direction.norm()


def test_padded_vocabulary_is_never_generated(tokenizer, tmp_path):
    model = build_gpt2(ModelArguments(**SHAPE, vocab_size=300), tokenizer)
    n = len(tokenizer)
    assert model.config.vocab_size % 64 == 0 and model.config.vocab_size > n
    _tempt_padded_ids(model, n)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert type(loaded) is GPT2LMHeadModel and loaded.config.vocab_size == model.config.vocab_size
    ids = tokenizer("The", return_tensors="pt")["input_ids"]
    torch.manual_seed(0)
    out = loaded.generate(ids, do_sample=True, temperature=5.0, top_k=0, max_new_tokens=40, min_new_tokens=40)
    assert out[0, 1:].max() < n  # plain model.generate with the saved defaults

    generator = pipeline("text-generation", model=str(tmp_path))
    got = generator("The", do_sample=True, temperature=5.0, max_new_tokens=30, return_tensors=True)[0][
        "generated_token_ids"
    ]
    assert max(got) < n
    steps = list(
        generate_steps(
            loaded, tokenizer, "The", Sampling(max_new_tokens=20, temperature=5.0, top_k=0, top_p=1.0)
        )
    )
    # the apps' sampler: a padded id would show as an empty token of probability 0 (the app's distribution omits them)
    assert steps and all(s.token and s.probability > 0 for s in steps)
    assert tokenizer.decode([n + 1]) == ""
    assert generate_text(loaded, tokenizer, "The", Sampling(max_new_tokens=10, temperature=5.0))

    # the control: without the suppression the padded ids are what a sampler picks
    loaded.generation_config.suppress_tokens = None
    unsuppressed = loaded.generate(
        ids, do_sample=True, temperature=5.0, top_k=0, max_new_tokens=40, min_new_tokens=40
    )
    assert (unsuppressed[0, 1:] >= n).float().mean() > 0.5


def test_pad_vocabulary_for_a_loaded_model(tokenizer):
    config = GPT2Config(vocab_size=len(tokenizer), **SHAPE, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)
    pad_vocabulary(model, tokenizer, 64)
    size = model.config.vocab_size
    assert size % 64 == 0 and size >= len(tokenizer)
    assert model.lm_head.weight.shape[0] == size and model.lm_head.weight is model.transformer.wte.weight
    assert model.generation_config.suppress_tokens == list(range(len(tokenizer), size))
    pad_vocabulary(model, tokenizer, 64)  # idempotent
    assert model.config.vocab_size == size
    with pytest.raises(UserError, match="padding multiple"):
        pad_vocabulary(model, tokenizer, 0)
    unpadded = build_gpt2(ModelArguments(**SHAPE, vocab_size=300, pad_vocab_multiple=1), tokenizer)
    assert unpadded.config.vocab_size == len(tokenizer) and not unpadded.generation_config.suppress_tokens


def _twin_models(vocab=300):
    config = GPT2Config(
        vocab_size=vocab, **SHAPE, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    ref = GPT2LMHeadModel(config)
    fast = GPT2LMHeadModel(config)
    fast.load_state_dict(ref.state_dict())
    return ref, fast


@pytest.mark.parametrize("num_items", [None, 100])
def test_chunked_loss_equals_transformers(monkeypatch, num_items):
    # 7 tokens per chunk: many chunks and a ragged last one
    monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", 300 * 7)
    ref, fast = _twin_models()
    assert use_fast_loss(fast, "chunked", "cpu") == "chunked"
    ids = torch.randint(0, 300, (3, 40))
    labels = ids.clone()
    labels[0, 5:12] = -100  # ignored positions, as a fine-tuning collator makes
    kwargs = {} if num_items is None else {"num_items_in_batch": torch.tensor(num_items)}
    a = ref(input_ids=ids, labels=labels, **kwargs).loss
    b = fast(input_ids=ids, labels=labels, **kwargs).loss
    assert b.item() == pytest.approx(a.item(), abs=1e-4)
    a.backward()
    b.backward()
    for (name, p), q in zip(ref.named_parameters(), fast.parameters()):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-5, rtol=1e-4, msg=name)
    # no labels: the usual forward with logits, for generation
    assert fast(input_ids=ids).logits.shape == (3, 40, 300)
    with torch.no_grad():
        assert fast(input_ids=ids, labels=labels, **kwargs).loss.item() == pytest.approx(a.item(), abs=1e-4)


def test_fast_loss_model_saves_as_plain_gpt2(tmp_path):
    _, fast = _twin_models()
    use_fast_loss(fast, "chunked", "cpu")
    fast.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["GPT2LMHeadModel"]
    again = GPT2LMHeadModel.from_pretrained(tmp_path)
    assert "forward" not in vars(again)


def test_fused_kernel_wiring(monkeypatch):
    """The liger path, with a stand-in module that computes what the kernel computes."""

    class FakeFused:
        def __init__(self, reduction):
            assert reduction == "sum"

        def __call__(self, weight, hidden, target):
            return F.cross_entropy(hidden @ weight.T, target, ignore_index=-100, reduction="sum")

    fake = types.ModuleType("liger_kernel.transformers")
    fake.LigerFusedLinearCrossEntropyLoss = FakeFused
    monkeypatch.setitem(sys.modules, "liger_kernel", types.ModuleType("liger_kernel"))
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", fake)
    hidden, weight = torch.randn(2, 9, 16), torch.randn(50, 16)
    labels = torch.randint(0, 50, (2, 9))
    fused = linear_cross_entropy(hidden, weight, labels, impl="liger")
    chunked = linear_cross_entropy(hidden, weight, labels, impl="chunked")
    assert fused.item() == pytest.approx(chunked.item(), abs=1e-5)


def test_loss_choice_by_device():
    assert resolve_loss("auto", "cpu") == "chunked"
    assert resolve_loss("hf", "cpu") == "hf"
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        resolve_loss("liger", "cpu")
    with pytest.raises(UserError, match="must be one of"):
        resolve_loss("fast", "cpu")
    other = torch.nn.Linear(4, 4)  # not GPT-2's layout (no .transformer / .lm_head): its own loss stays
    assert use_fast_loss(other, "chunked", "cpu") == "hf" and "forward" not in vars(other)


def test_pretraining_arguments_decide_compilation_when_made():
    from llmkit.lm import PretrainingArguments

    assert PretrainingArguments(output_dir="x").torch_compile is torch.cuda.is_available()
    assert PretrainingArguments(output_dir="x", torch_compile=True).torch_compile is True


@pytest.mark.slow
def test_training_forward_has_no_graph_breaks():
    _, fast = _twin_models()
    use_fast_loss(fast, "chunked", "cpu")
    ids = torch.randint(0, 300, (2, 16))
    explained = torch._dynamo.explain(fast)(input_ids=ids, labels=ids)
    assert explained.graph_break_count == 0, explained.break_reasons


def test_peaks():
    assert table_peak("NVIDIA H100 80GB HBM3", "bf16") == 989e12
    assert table_peak("NVIDIA H100 PCIe", "bf16") == 756e12
    assert table_peak("NVIDIA H200", "tf32") == 494.7e12
    assert table_peak("NVIDIA A100-SXM4-80GB", "bf16") == 312e12
    assert table_peak("NVIDIA A10G", "bf16") == 70e12 and table_peak("NVIDIA L4", "bf16") == 121e12
    assert table_peak("NVIDIA GeForce RTX 4090", "fp32") == 82.6e12
    assert table_peak("Some Future GPU", "bf16") is None
    assert table_peak("NVIDIA H100 80GB HBM3", "fp32") < table_peak("NVIDIA H100 80GB HBM3", "bf16")
    peak, source = device_peak("cpu", "fp32")
    # the CPU peak is the best of its matmul rounds: at least what one more timed matmul achieves
    a = torch.randn(512, 512)
    started = time.perf_counter()
    for _ in range(8):
        a @ a
    achieved = 8 * 2 * 512**3 / (time.perf_counter() - started)
    assert peak >= 0.5 * achieved and "measured" in source, (peak, achieved)
    # measured once per process: a later call only tops the best up, never lowers it
    started = time.perf_counter()
    assert device_peak("cpu", "fp32")[0] >= peak and time.perf_counter() - started < 0.5


def test_mfu_is_never_above_one_when_the_peak_was_measured_on_a_busy_machine():
    # three spinning processes on this machine's cores: the peak measured meanwhile is too low
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    throughput._measured_peaks.clear()  # measure afresh, under load, not the best kept from earlier tests
    try:
        loaded = measured_matmul_peak("cpu", "fp32")
    finally:
        for p in busy:
            p.kill()
            p.wait()
    report = ReportCallback(tokens_per_step=1, flops_per_token=1.0, peak_flops=loaded)
    assert report.mfu(loaded * 1.2) is None  # a rate above the measured peak: no MFU, not 120%
    assert report.mfu(loaded / 2) == pytest.approx(0.5)
    assert "not reported" in describe_mfu(None, "CPU measured")
    assert describe_mfu(0.31, "CPU (2 threads) measured fp32 matmul peak").startswith(
        "MFU 31.0% (an estimate"
    )


def test_metrics_report_steady_throughput_and_mfu(tiny_run):
    out, metrics = tiny_run
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["steady_tokens_per_second"] > 0 and saved["train_tokens_per_second"] > 0
    assert 0 < saved["mfu"] < 1 and saved["steady_steps"] > 0 and saved["warmup_steps_excluded"] >= 2
    assert saved["steady_steps"] + saved["warmup_steps_excluded"] == 60
    assert saved["loss_implementation"] == "chunked" and saved["vocab_size"] % 64 == 0
    logged = [
        e
        for e in json.loads((out / "checkpoint-60" / "trainer_state.json").read_text())["log_history"]
        if "loss" in e
    ]
    assert all(e["tokens_per_second"] > 0 and 0 < e["mfu"] < 1 for e in logged)


@pytest.mark.slow
def test_finetuning_pads_an_unpadded_model(tokenizer, tmp_path):
    from llmkit.recipes.finetune_gpt2 import main as finetune_gpt2

    base = tmp_path / "base"
    config = GPT2Config(vocab_size=len(tokenizer), **SHAPE, bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "\n".join(json.dumps({"prompt": f"Q: {a} plus 1?", "response": f" A: {a + 1}"}) for a in range(40))
    )
    out = tmp_path / "ft"
    finetune_gpt2(
        [
            "--model_name_or_path",
            str(base),
            "--train_file",
            str(pairs),
            "--text_column",
            "prompt",
            "--target_column",
            "response",
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--disable_tqdm",
            "true",
            "--output_dir",
            str(out),
        ]
    )
    tuned = AutoModelForCausalLM.from_pretrained(out)
    assert tuned.config.vocab_size % 64 == 0 and tuned.config.vocab_size > len(tokenizer)
    assert tuned.generation_config.suppress_tokens == list(range(len(tokenizer), tuned.config.vocab_size))


def test_attention_map_is_causal_and_normalised(tiny_run):
    from llmkit.lm.generate import load_causal_lm
    from llmkit.lm.inspect import attention_map

    model, tokenizer = load_causal_lm(str(tiny_run[0]))
    tokens, weights = attention_map(model, tokenizer, "The for statement is used", layer=1, head=1)
    n = len(tokens)
    assert weights.shape == (n, n) and n > 3
    assert torch.allclose(weights.sum(-1), torch.ones(n), atol=1e-4)  # each row a distribution
    assert float(weights.triu(1).abs().max()) == 0.0  # no token attends to a later one


def test_ddp_does_not_search_for_unused_parameters_in_gpt2():
    # transformers' default (None -> True without gradient checkpointing) made DDP traverse the autograd graph
    # after every backward; torch warned at each 2-rank pretraining run that GPT-2 has no unused parameter
    from llmkit.arguments import parse_args
    from llmkit.data import DataArguments
    from llmkit.lm import PretrainingArguments

    args = parse_args((DataArguments, ModelArguments, PretrainingArguments), ["--output_dir", "x"])[-1]
    assert args.ddp_find_unused_parameters is False


def test_a_run_too_short_for_a_steady_figure_does_not_call_its_speed_after_warm_up(capsys):
    # a 2-step run printed "79 tokens/s after warm-up (79 over the whole run)": every step was a warm-up step
    # (steady_steps 0) and both figures were the whole-run average
    from llmkit.lm.pretrain import _print_summary

    metrics = {"output_dir": "run", "mfu": 0.04, "peak_source": "measured", "train_tokens_per_second": 79.2}
    metrics |= {
        "steady_tokens_per_second": None,
        "steady_steps": 0,
        "warmup_steps_excluded": 2,
        "samples": [],
    }
    _print_summary(metrics, "run", "GPT-2 tiny")
    out = capsys.readouterr().out
    assert "after warm-up" not in out
    assert "79 tokens/s over the whole run, warm-up included (too few steps, 2, to measure after it)" in out
    _print_summary(metrics | {"steady_steps": 35, "steady_tokens_per_second": 90.0}, "run", "GPT-2 tiny")
    assert "90 tokens/s after warm-up (79 over the whole run)" in capsys.readouterr().out


def test_a_run_too_short_for_a_steady_figure_records_none(tmp_path):
    # metrics.json held the whole-run rate as steady_tokens_per_second beside steady_steps 0
    from tests.helpers import FAST_TRAINING, TINY_MODEL, run_pretrain

    argv = [*TINY_MODEL, *FAST_TRAINING, "--max_steps", "2", "--sample_max_new_tokens", "4"]
    metrics = run_pretrain([*argv, "--output_dir", str(tmp_path / "run")])
    assert metrics["steady_steps"] == 0 and metrics["steady_tokens_per_second"] is None
    assert metrics["train_tokens_per_second"] > 0
