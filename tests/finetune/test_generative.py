"""The T5 and GPT-2 recipes: a small T5 learns a mapping; the causal LM learns responses only; LoRA resumes."""

import json

import pytest
from transformers import TrainerCallback, pipeline

from llmkit.finetune.seq2seq import text2text
from llmkit.recipes.finetune_gpt2 import main as finetune_gpt2
from llmkit.recipes.finetune_t5 import main as finetune_t5
from tests.finetune.helpers import FAST


def test_small_t5_from_scratch_learns_a_mapping(digits_jsonl, tmp_path):
    common = [
        "--train_file",
        str(digits_jsonl),
        "--text_column",
        "words",
        "--target_column",
        "digits",
        "--source_prefix",
        "digits: ",
        "--from_scratch",
        "--scratch_vocab_size",
        "300",
        "--per_device_train_batch_size",
        "16",
        "--learning_rate",
        "3e-3",
        "--disable_tqdm",
        "true",
        "--logging_steps",
        "10",
        "--max_eval_samples",
        "40",
    ]
    before = finetune_t5([*common, "--max_steps", "1", "--output_dir", str(tmp_path / "before")])
    after = finetune_t5([*common, "--num_train_epochs", "6", "--output_dir", str(tmp_path / "after")])
    assert before["eval_exact_match"] < 0.1
    assert after["eval_exact_match"] > 0.5 and after["eval_rouge1"] > before["eval_rouge1"]
    assert text2text(tmp_path / "after", "digits: seven") == "7"
    assert "rougeL" in (tmp_path / "after" / "README.md").read_text()


def test_t5_without_a_tokenizer_is_refused(tmp_path, capsys):
    from llmkit.cli import main as llmkit_main
    from llmkit.finetune.seq2seq import small_t5, train_t5_tokenizer

    small_t5(train_t5_tokenizer(["a few words"] * 10, 300)).save_pretrained(tmp_path / "weights-only")
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"text": f"x{i}", "summary": "y"}) for i in range(10)))
    with pytest.raises(SystemExit):
        llmkit_main(
            [
                "finetune-t5",
                "--model_name_or_path",
                str(tmp_path / "weights-only"),
                "--train_file",
                str(data),
                "--output_dir",
                str(tmp_path / "o"),
            ]
        )
    assert "pass --tokenizer_name" in capsys.readouterr().err


def test_t5_offline_without_a_model_names_from_scratch_and_leaves_no_folder(tmp_path, capsys, monkeypatch):
    """With data the model is t5-small: offline its refusal said "pass --tokenizer_name" and left an empty
    output_dir behind."""
    from huggingface_hub import try_to_load_from_cache

    from llmkit.cli import main as llmkit_main

    if isinstance(try_to_load_from_cache("t5-small", "config.json"), str):
        pytest.skip("t5-small is in this machine's Hub cache: the run would train it")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"text": f"x{i}", "summary": "y"}) for i in range(10)))
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["finetune-t5", "--train_file", str(data), "--output_dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "cannot fetch tokenizer 't5-small'" in err and "--from_scratch" in err
    assert "--tokenizer_name" not in err and not (tmp_path / "o").exists()


def _pairs(path):
    rows = [
        {"prompt": f"Q: what is {a} plus {b}?", "response": f" A: {a + b}"}
        for a in range(8)
        for b in range(8)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def test_causal_lm_learns_responses_only(tiny_run, tmp_path):
    out, _ = tiny_run  # the pretraining recipe's output is the starting point
    metrics = finetune_gpt2(
        [
            "--model_name_or_path",
            str(out),
            "--train_file",
            str(_pairs(tmp_path / "p.jsonl")),
            "--text_column",
            "prompt",
            "--target_column",
            "response",
            "--num_train_epochs",
            "3",
            "--learning_rate",
            "3e-3",
            "--output_dir",
            str(tmp_path / "ft"),
            *FAST,
        ]
    )
    assert metrics["eval_perplexity"] < 20  # only the short, regular responses are scored
    generator = pipeline("text-generation", model=str(tmp_path / "ft"))
    prompt = "Q: what is 2 plus 3?\n"
    answer = generator(prompt, max_new_tokens=4, do_sample=False)[0]["generated_text"][len(prompt) :]
    assert answer.lstrip().startswith("A")  # it answers in the responses' form

    from transformers import AutoTokenizer

    from llmkit.finetune.causal import _pairs as encode_pairs

    tok = AutoTokenizer.from_pretrained(out)
    enc = encode_pairs(
        {"prompt": ["Q: hi"], "response": [" A: yo"]}, tok, "{prompt}\n", "prompt", "response", 64
    )
    n_prompt = len(tok("Q: hi\n", add_special_tokens=False)["input_ids"])
    assert enc["labels"][0][:n_prompt] == [-100] * n_prompt and enc["labels"][0][-1] == tok.eos_token_id


class _Stop(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


def test_lora_run_resumes_from_its_checkpoint(tiny_run, tmp_path):
    out, _ = tiny_run
    argv = [
        "--model_name_or_path",
        str(out),
        "--train_file",
        str(_pairs(tmp_path / "p.jsonl")),
        "--text_column",
        "prompt",
        "--target_column",
        "response",
        "--use_lora",
        "--lora_target_modules",
        "c_attn",
        "c_proj",
        "--max_steps",
        "8",
        "--save_strategy",
        "steps",
        "--save_steps",
        "4",
        "--eval_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
        "--output_dir",
        str(tmp_path / "lora"),
        *FAST,
    ]
    from llmkit.arguments import parse_args
    from llmkit.finetune import (
        FinetuneDataArguments,
        FinetuneModelArguments,
        FinetuneTrainingArguments,
        LoraArguments,
    )
    from llmkit.finetune.causal import CausalArguments, finetune_causal

    parsed = parse_args(
        (
            CausalArguments,
            FinetuneDataArguments,
            FinetuneModelArguments,
            LoraArguments,
            FinetuneTrainingArguments,
        ),
        argv,
    )
    import transformers

    original = transformers.Trainer.__init__

    def with_stop(self, *a, **k):
        original(self, *a, **k)
        self.add_callback(_Stop())

    transformers.Trainer.__init__ = with_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            finetune_causal(parsed)
    finally:
        transformers.Trainer.__init__ = original
    assert (tmp_path / "lora" / "checkpoint-4" / "adapter_model.safetensors").is_file()
    resumed = finetune_gpt2([*argv, "--resume_from_checkpoint", str(tmp_path / "lora" / "checkpoint-4")])
    assert resumed["global_step"] == 8
    state = json.loads((tmp_path / "lora" / "checkpoint-8" / "trainer_state.json").read_text())
    assert [e["step"] for e in state["log_history"] if "loss" in e] == [
        5,
        8,
    ]  # steps 5-8 ran after the resume; the last is always logged


def test_text_whose_validation_split_packs_into_no_block_is_refused(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from llmkit.data.tokenizer import train_bpe_tokenizer
    from llmkit.errors import UserError

    model = tmp_path / "gpt2"
    texts = [f"line {i}: the quick brown fox jumps over the lazy dog." for i in range(40)]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=300)
    tokenizer.save_pretrained(model)
    config = GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_head=2, n_embd=32, n_positions=64)
    GPT2LMHeadModel(config).save_pretrained(model)
    train = tmp_path / "t.jsonl"
    train.write_text("\n".join(json.dumps({"text": t}) for t in texts))  # 5% held out: 2 short lines
    argv = [
        "--model_name_or_path",
        str(model),
        "--train_file",
        str(train),
        "--output_dir",
        str(tmp_path / "o"),
    ]
    # the Trainer found no eval_loss to pick the best checkpoint by: a KeyError traceback after training
    with pytest.raises(UserError, match="the validation text is shorter than one block of 64 tokens"):
        finetune_gpt2([*argv, "--max_steps", "1", *FAST])
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_a_lora_run_continued_without_merge_lora_leaves_no_earlier_merged_model(tiny_run, tmp_path):
    out = tmp_path / "lora"
    argv = [
        "--model_name_or_path",
        str(tiny_run[0]),
        "--train_file",
        str(_pairs(tmp_path / "p.jsonl")),
        "--text_column",
        "prompt",
        "--target_column",
        "response",
        "--use_lora",
        "--lora_target_modules",
        "c_attn",
        "--save_strategy",
        "steps",
        "--save_steps",
        "4",
        "--eval_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
        "--output_dir",
        str(out),
        *FAST,
    ]
    finetune_gpt2([*argv, "--max_steps", "4", "--merge_lora", "true"])
    assert (out / "merged" / "model.safetensors").is_file()
    finetune_gpt2([*argv, "--max_steps", "8"])
    # merged/ held step 4's model beside step 8's adapter, and the first run's summary had pointed users at it
    assert not (out / "merged").exists()
