"""A resumed run refuses another model shape or tokenizer; generate refuses a model that is not a causal LM."""

import json

import pytest
from transformers import BertConfig, BertForSequenceClassification

from llmkit.cli import main as llmkit_main
from llmkit.errors import UserError
from tests.helpers import FAST_TRAINING, TINY_MODEL, run_pretrain


def _flags(out, *extra):
    flags = [
        *TINY_MODEL,
        *FAST_TRAINING,
        "--max_steps",
        "60",
        "--eval_steps",
        "30",
        "--save_steps",
        "30",
        "--output_dir",
        str(out),
    ]
    for i in range(0, len(extra), 2):  # replace a flag's value, or add the flag
        if extra[i] in flags:
            flags[flags.index(extra[i]) + 1] = extra[i + 1]
        else:
            flags += [extra[i], extra[i + 1]]
    return flags


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--n_layer", "3"), "--n_layer 3 (checkpoint: 2)"),
        (("--n_embd", "96", "--n_head", "3"), "--n_head 3 (checkpoint: 2), --n_embd 96 (checkpoint: 64)"),
        (("--vocab_size", "600"), "--vocab_size 600: it was trained with 512"),
        (("--tokenizer_name", "gpt2"), "--tokenizer_name gpt2: it was trained with a BPE of 512"),
    ],
)
def test_resume_refuses_another_shape_or_tokenizer(tiny_run, change, message):
    out, _ = tiny_run
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(UserError) as err:
        run_pretrain(_flags(out, *change))
    assert message in str(err.value) and "--output_dir" in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == before  # nothing saved was touched


def test_a_refused_new_run_writes_nothing(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(UserError, match="--block_size 128 is larger than the model's context"):
        run_pretrain(_flags(out, "--block_size", "128"))  # refused after the BPE was trained
    assert not out.exists()


def test_resume_log_names_the_saved_tokenizer(tiny_run):
    out, _ = tiny_run
    request = json.loads((out / "llmkit_tokenizer.json").read_text())
    assert request == {"tokenizer_name": None, "vocab_size": 512}


def test_generate_refuses_a_classifier(tmp_path, capsys):
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    BertForSequenceClassification(config).save_pretrained(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["generate", "--model", str(tmp_path), "--prompt", "Hello"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert "BertForSequenceClassification, not a causal language model" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        # one step trained and saved as a finished run, exit 0
        (["--max_steps", "0"], "--max_steps must be at least 1, got 0; leave it out"),
        # torch's "Invalid beta parameter" traceback when the optimizer was made, after the corpus and tokenizer
        (["--adam_beta2", "2"], "--adam_beta2 must be 0 or more and below 1, got 2.0"),
        # NaN weights after one step, then a multinomial traceback while writing the samples
        (["--weight_decay", "nan"], "--weight_decay must be 0 or more and finite, got nan"),
        # "cannot convert float NaN to integer" when the schedule was made
        (["--warmup_steps", "nan"], "--warmup_steps must be 0 or more and finite"),
        # NaN > 0 is false: clipping silently off
        (["--max_grad_norm", "nan"], "--max_grad_norm must be 0 or more, got nan"),
        (["--adam_epsilon", "0"], "--adam_epsilon must be positive and finite, got 0.0"),
    ],
)
def test_optimizer_numbers_that_cannot_work_are_refused_when_parsed(flags, message):
    from llmkit.arguments import parse_args
    from recipes import RECIPES

    with pytest.raises(UserError, match=message):
        parse_args(RECIPES["pretrain"].load().TYPES, flags)
    parse_args(RECIPES["pretrain"].load().TYPES, ["--max_steps", "-1", "--warmup_steps", "0.05"])


def test_a_diverged_model_is_named_not_sampled(tmp_path, capsys):
    # a run whose loss went to NaN (--learning_rate 1e4) ended in torch.multinomial's "probability tensor
    # contains either inf, nan" traceback while writing its samples; `llmkit generate` on it did the same
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from llmkit.data.tokenizer import train_bpe_tokenizer
    from llmkit.lm.report import check_finite

    tokenizer = train_bpe_tokenizer(["cats and dogs, dogs and cats."] * 20, vocab_size=300)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=320, n_layer=1, n_head=2, n_embd=32, n_positions=32))
    check_finite(model, 4, 3.2, 1e-3)  # a finite model passes
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight[0, 0] = float("nan")
    with pytest.raises(
        UserError, match=r"training diverged: at step 4 .* Lower --learning_rate \(this run: 10000\)"
    ):
        check_finite(model, 4, float("nan"), 1e4)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["generate", "--model", str(tmp_path), "--prompt", "cats"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert "weights hold NaN or infinite values (its training diverged)" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        # datasets' "num_proc must be >= 0 or None" traceback, after the BPE had trained
        (["--preprocessing_num_workers", "-1"], "--preprocessing_num_workers must be at least 1 .*got -1"),
        # read nowhere: the stream was tokenized as it was read, in one process per rank
        (
            ["--streaming", "--train_files", "a.txt", "--preprocessing_num_workers", "4"],
            "a --streaming corpus is tokenized as it is read: drop it",
        ),
        (
            ["--tokenized_dataset", "blocks", "--preprocessing_num_workers", "4"],
            "a --tokenized_dataset is packed already: drop it",
        ),
        # blocks of one token have no next token: a NaN loss, then a wrong "training diverged"
        (["--n_positions", "1"], "--n_positions must be at least 2"),
    ],
)
def test_data_and_shape_values_that_cannot_work_are_refused_when_parsed(flags, message):
    from llmkit.arguments import parse_args
    from recipes import RECIPES

    with pytest.raises(UserError, match=message):
        parse_args(RECIPES["pretrain"].load().TYPES, flags)


def test_a_vocab_size_larger_than_the_named_tokenizer_is_refused():
    # --tokenizer_name X --vocab_size 5000 trained a model of X's 289 tokens (320 padded) without a word
    from llmkit.data.tokenizer import train_bpe_tokenizer
    from llmkit.lm.model import ModelArguments, build_gpt2

    tokenizer = train_bpe_tokenizer(["cats and dogs, dogs and cats."] * 20, vocab_size=300)
    shape = {"n_layer": 1, "n_head": 2, "n_embd": 32, "n_positions": 32, "tokenizer_name": "mine"}
    with pytest.raises(
        UserError, match=rf"--vocab_size 5000 is larger than tokenizer 'mine''s {len(tokenizer)} tokens"
    ):
        build_gpt2(ModelArguments(vocab_size=5000, **shape), tokenizer)
    assert build_gpt2(ModelArguments(vocab_size=len(tokenizer), **shape), tokenizer).config.vocab_size == 320
