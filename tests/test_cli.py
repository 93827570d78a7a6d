"""The command line: user mistakes get one clear message and a non-zero exit, never a traceback."""

import os
import subprocess
import sys

import pytest

from llmkit.cli import main as llmkit_main
from tests.helpers import REPO, TINY_MODEL


def _fails_with(argv, capsys, message):
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert message in err, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--preset", "gpt5"], "unknown preset 'gpt5'"),
        (["--train_files", "/nonexistent/corpus.txt"], "does not exist"),
        (["--block_size", "999"], "larger than the model's context"),
        (["--n_embd", "100", "--n_head", "3"], "must be divisible by n_head"),
        (["--dataset_name", "a", "--train_files", "b.txt"], "not both"),
        (["--tokenizer_name", "/nonexistent/tokenizer"], "no folder at /nonexistent/tokenizer"),
        (["--precision", "fp8"], "--precision must be"),
        (["--save_steps", "0"], "--save_steps must be positive"),  # it meant no checkpoint, and exit 0
        (["--save_steps", "-5"], "pass --save_strategy no"),
        (["--eval_steps", "-1"], "--eval_steps must be positive"),
        (["--logging_steps", "0"], "--logging_steps must be positive"),
        (["--no_such_flag", "1"], "unknown arguments --no_such_flag 1"),
    ],
)
def test_pretrain_user_errors(argv, capsys, tmp_path, message):
    _fails_with(["pretrain", *TINY_MODEL, "--output_dir", str(tmp_path / "out"), *argv], capsys, message)


def test_empty_corpus_and_unwritable_output_dir(capsys, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    _fails_with(
        ["pretrain", "--train_files", str(empty), "--output_dir", str(tmp_path / "o")], capsys, "empty"
    )
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n\n")
    _fails_with(
        ["pretrain", "--train_files", str(blank), "--output_dir", str(tmp_path / "o")],
        capsys,
        "no non-empty documents",
    )
    a_file = tmp_path / "file"
    a_file.write_text("x")
    _fails_with(["pretrain", "--output_dir", str(a_file / "sub")], capsys, "cannot write to --output_dir")


def test_an_output_dir_with_files_no_run_wrote_is_refused(capsys, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("# my project\n")
    (project / "config.json").write_text("{}")
    # the run overwrote them with its model card and model config
    err = _fails_with(["train-mlp", "--output_dir", str(project)], capsys, "holds README.md, config.json")
    assert "no training run wrote" in err and "pass a new or empty --output_dir" in err
    _fails_with(["pretrain", *TINY_MODEL, "--output_dir", str(project)], capsys, "would overwrite them")
    assert (project / "README.md").read_text() == "# my project\n"
    assert sorted(p.name for p in project.iterdir()) == ["README.md", "config.json"]


def test_tokenizer_vocabulary_mismatch(capsys, tmp_path, tiny_run):
    out, _ = tiny_run  # its tokenizer has 512 tokens
    _fails_with(
        [
            "pretrain",
            *TINY_MODEL[:-2],
            "--tokenizer_name",
            str(out),
            "--vocab_size",
            "100",
            "--output_dir",
            str(tmp_path / "o"),
        ],
        capsys,
        "smaller than tokenizer",
    )


def test_resume_with_another_tokenizer_is_refused(capsys, tmp_path, tiny_run):
    from llmkit.data import builtin_texts, train_bpe_tokenizer

    out, _ = tiny_run  # trained with a 512-token BPE
    other = tmp_path / "other-tokenizer"
    train_bpe_tokenizer(builtin_texts()[:200], 300).save_pretrained(other)
    _fails_with(
        [
            "pretrain",
            *TINY_MODEL[:-2],
            "--output_dir",
            str(tmp_path / "o"),
            "--pad_vocab_multiple",
            "1",
            "--resume_from_checkpoint",
            str(out / "checkpoint-60"),
            "--tokenizer_name",
            str(other),
        ],
        capsys,
        f"cannot resume {out / 'checkpoint-60'} with --tokenizer_name {other}: it was trained with a BPE of 512",
    )


def test_generate_streams_a_continuation(capsys, caplog, tiny_run, tmp_path):
    out, _ = tiny_run
    flags = ["--model", str(out), "--prompt", "The for statement", "--max_new_tokens", "8", "--seed", "1"]
    llmkit_main(["generate", *flags])
    text = capsys.readouterr().out
    assert text.startswith("The for statement") and len(text.strip()) > len("The for statement")
    # the same flags from a config file, the seed fixing the sample
    config = tmp_path / "generate.yaml"
    config.write_text("\n".join(f"{k[2:]}: {v!r}" for k, v in zip(flags[::2], flags[1::2])) + "\n")
    llmkit_main(["generate", "--config", str(config)])
    assert capsys.readouterr().out == text
    _fails_with(["generate", "--model", "/nonexistent/model", "--prompt", "x"], capsys, "does not exist")
    _fails_with(["generate", "--model", str(out), "--prompt", ""], capsys, "prompt is empty")
    # a non-UTF-8 terminal's byte (a lone surrogate to Python) was a tokenizer TypeError traceback
    _fails_with(
        ["generate", "--model", str(out), "--prompt", "caf\udce9"], capsys, "bytes that are not UTF-8"
    )
    long_prompt = " ".join(["statement"] * 200)  # the tiny model's context is 64 tokens
    err = _fails_with(["generate", "--model", str(out), "--prompt", long_prompt], capsys, "leaves no room")
    assert "in the model's context of 64 tokens; shorten it to at most 63 tokens." in err
    # more new tokens than the context holds: capped, and said (it was silently capped)
    with caplog.at_level("INFO", logger="llmkit"):
        llmkit_main(["generate", *flags[:4], "--max_new_tokens", "100000"])
    assert (
        "new tokens, not 100000: the prompt's 5 tokens leave that much of the model's 64-token" in caplog.text
    )
    # the end-of-text token (which a model writes between documents) is not text: streamed, it showed as
    # <|endoftext|>; a prompt holding one shows it the same way, whatever this tiny model samples
    capsys.readouterr()
    llmkit_main(["generate", *flags[:2], "--prompt", "x<|endoftext|>y", "--max_new_tokens", "4"])
    streamed = capsys.readouterr().out
    assert "<|endoftext|>" not in streamed and streamed.startswith("xy")


def test_generate_names_each_wrong_sampling_value_and_hints_once(capsys):
    bad = "--top_p 0 --top_k -1 --temperature nan".split()
    err = _fails_with(
        ["generate", "--model", "x", "--prompt", "x", *bad], capsys, "temperature is nan but must"
    )
    assert "top_p is 0.0 but must be in (0, 1]" in err and "top_k is -1 but must be >= 0" in err
    err = _fails_with(["generate", "--model", "/nonexistent/m", "--prompt", "x"], capsys, "does not exist")
    assert err.lower().count("hub name") == 1, err  # the load hint was repeated by generate


def test_unknown_command_and_missing_config(capsys):
    _fails_with(["frobnicate"], capsys, "unknown command")
    # one line with the closest command, not the whole usage page with the error below it
    err = _fails_with(["pretrian"], capsys, "unknown command 'pretrian'; did you mean `llmkit pretrain`?")
    assert err.count("\n") == 1 and "commands:" not in err, err
    _fails_with(["pretrain", "missing-config.yaml"], capsys, "config file missing-config.yaml does not exist")


def test_the_apps_are_commands_too(capsys):
    # from a pip install there is no apps/ folder to `python apps/models.py` from
    llmkit_main(["app", "--help"])
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("models", "rag-chat", "classic"))
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["app", "models", "--help"])
    assert exit_.value.code == 0 and "usage: llmkit app models" in capsys.readouterr().out
    _fails_with(["app", "chat"], capsys, "unknown app 'chat'; pick one of models, rag-chat, classic")
    _fails_with(["app", "models", "--causal", "/nonexistent"], capsys, "/nonexistent is not a model folder")


def test_python_dash_m_llmkit_is_the_llmkit_command_and_help_names_what_an_install_has(tmp_path):
    # run outside the checkout, as from a pip install: no recipes/ folder beside the user
    proc = subprocess.run(
        [sys.executable, "-m", "llmkit", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.startswith("usage: llmkit <command>"), proc.stderr[-2000:]
    assert "(llmkit.recipes.pretrain_gpt2)" in proc.stdout and "(recipes/" not in proc.stdout
    assert "accelerate launch -m llmkit.recipes.MODULE" in proc.stdout
    from llmkit.spaces import TEMPLATES

    build = subprocess.run(
        [sys.executable, "-m", "llmkit", "space", "build", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    listed = " ".join(build.stdout.split()).replace("- ", "-")  # argparse wraps image-classifier at its dash
    assert build.returncode == 0 and all(name in listed for name in TEMPLATES), build.stdout


def test_the_models_app_refuses_folders_it_would_misread(tmp_path, capsys, monkeypatch):
    import gradio as gr
    from safetensors.torch import save_file
    from torch import zeros

    def opened(*args, **kwargs):
        raise AssertionError("the app opened on a folder it should have refused")

    monkeypatch.setattr(gr.Blocks, "launch", opened)

    lm = tmp_path / "gpt2"  # a pretraining run's output: it opened as a classifier with a random head
    lm.mkdir()
    (lm / "config.json").write_text('{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}')
    _fails_with(
        ["app", "models", "--classifier", str(lm)], capsys, "holds a GPT2LMHeadModel, not a text classifier"
    )
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "config.json").write_text('{"architectures": ["BertForSequ')
    _fails_with(["app", "models", "--classifier", str(cut)], capsys, "config.json is not a model's config")
    killed = tmp_path / "killed"  # `llmkit pretrain` killed with -9: checkpoints, no final model
    for step, complete in ((20, True), (40, False)):
        checkpoint = killed / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "config.json").write_text(lm.joinpath("config.json").read_text())
        save_file({"w": zeros(1)}, checkpoint / "model.safetensors")
        if complete:
            (checkpoint / "trainer_state.json").write_text('{"global_step": 20}')
    err = _fails_with(["app", "models", "--causal", str(killed)], capsys, "its run stopped early")
    assert f"Pass its newest checkpoint, {killed / 'checkpoint-20'}, or run the same training command" in err
    _fails_with(["app", "models", "--causal", str(tmp_path / "nope")], capsys, "there is no such folder")


def test_the_classic_app_names_a_folder_of_the_wrong_recipe(tmp_path, capsys):
    lm = tmp_path / "gpt2"  # a pretraining run's output: config.json and metrics.json, but not the classics'
    lm.mkdir()
    (lm / "config.json").write_text('{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}')
    (lm / "metrics.json").write_text('{"eval_loss": 3.2}')
    for flag, message in [  # the first three were FileNotFoundError / KeyError tracebacks
        (
            "--hp_search",
            "holds no readable trials.json; pass the hp_search/ folder of a --hp_search_trials run",
        ),
        ("--word2vec", "holds no vectors.txt; pass the output_dir of recipes/train_word2vec.py"),
        (
            "--dbn",
            "its metrics.json has no 'random_init_eval_accuracy'; pass the output_dir of recipes/train_dbn",
        ),
        (
            "--gan",
            "holds a transformers 'gpt2' model (its config.json names no architecture)",
        ),  # "a None model"
    ]:
        _fails_with(["app", "classic", flag, str(lm)], capsys, message)
    (lm / "config.json").write_text('{"architecture": "lenet", "kwa')  # a save cut short: JSONDecodeError
    _fails_with(["app", "classic", "--cnn", str(lm)], capsys, "config.json is not a classic recipe's config")


def test_the_apps_refuse_a_port_out_of_range_and_a_threshold_without_its_reader(capsys, tmp_path):
    for app in ("classic", "models", "rag-chat"):  # bind() raised OverflowError, after the models had loaded
        argv = ["app", app, "--port", "99999"] + (
            ["--store", str(tmp_path / "none")] if app == "rag-chat" else []
        )
        _fails_with(argv, capsys, "must be a port number from 0 to 65535, got 99999")
    # silently ignored, where `rag ask` refuses it
    argv = ["app", "rag-chat", "--store", str(tmp_path / "none"), "--reader_threshold", "0.5"]
    _fails_with(argv, capsys, "--reader_threshold applies to a reader")


def test_output_into_a_closed_pipe_ends_quietly():
    read, write = os.pipe()
    os.close(read)  # as `llmkit --help | head -1` once head has exited
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "from llmkit.cli import main; main()", "--help"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr


def test_log_lines_into_a_closed_pipe_end_quietly():
    read, write = os.pipe()
    os.close(read)  # as `llmkit pretrain ... | head -3` once head has exited: the recipe's progress is logged
    say = "from llmkit import cli; from llmkit.log import get_logger\n"
    say += (
        "cli.COMMANDS['say'] = lambda argv: [get_logger('llmkit.x').info('step %d', i) for i in range(3)]\n"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", say + "cli.main(['say'])"], stdout=write, stderr=subprocess.PIPE, text=True
        )
    finally:
        os.close(write)
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr  # was a "--- Logging error ---" traceback


@pytest.mark.slow
def test_recipe_process_exits_cleanly_on_bad_input():
    proc = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "pretrain_gpt2.py"), "--preset", "nope"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "error: unknown preset 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_importing_llmkit_first_lets_openmp_threads_sleep_unless_the_user_chose():
    probe = "import os, llmkit; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"


def test_an_output_path_that_cannot_be_written_is_named_not_a_traceback(tmp_path, capsys):
    """tokenize, rag index and space build stopped with NotADirectoryError/PermissionError tracebacks."""
    (tmp_path / "corpus.txt").write_text("Some text to read.\n\nAnd a second paragraph.\n")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("precious")
    inside = str(a_file / "out")
    corpus = str(tmp_path / "corpus.txt")
    for argv in (
        ["tokenize", "--train_files", corpus, "--output_dir", inside],
        ["rag", "index", corpus, "--store", inside],
        ["space", "build", "classic", "--out", inside],
    ):
        _fails_with(argv, capsys, f"{a_file} is a file, not a folder")
    assert a_file.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "notes.txt"]
