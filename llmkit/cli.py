"""`llmkit <command> ...`: thin dispatch to the same functions the recipes call."""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import shlex
import sys

from llmkit.arguments import add_config_flag, set_program
from llmkit.errors import run_cli
from llmkit.recipes import RECIPES
from llmkit.tool_cli import parse_command, parse_subcommand, subcommand_parser

TOOLS = {
    "app": "open a Gradio app: models, rag-chat or classic (`llmkit app NAME --help`)",
    "generate": "sample text from a causal LM folder, streaming it to the terminal",
    "rag": "index documents and ask questions with cited sources (index, ask, eval, chat, serve)",
    "space": "build, check and deploy a Hugging Face Space (build, check, deploy)",
}


def usage() -> str:
    """`llmkit --help`: every recipe from the registry, then the tools."""
    # The module name, not recipes/FILE.py: an installed llmkit has no recipes/ folder, and the module runs in both.
    rows = [(r.name, f"{r.summary} (llmkit.recipes.{r.module})") for r in RECIPES.values()] + list(
        TOOLS.items()
    )
    width = max(16, *(len(name) + 2 for name, _ in rows))  # finetune-segmentation is 21 characters
    lines = "\n".join(f"  {name:<{width}}{text}" for name, text in rows)
    return (
        f"usage: llmkit <command> [options]\n\ncommands:\n{lines}\n\n"
        "`llmkit <command> --help` lists a command's options; every command also takes `--config FILE.yaml`.\n"
        "A recipe also runs as `python -m llmkit.recipes.MODULE` or, on several processes, `accelerate launch -m "
        "llmkit.recipes.MODULE` (in a clone: `recipes/MODULE.py`)."
    )


def _generate(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="llmkit generate", description="Sample text from a causal language model."
    )
    parser.add_argument("--model", required=True, help="a training run's output_dir, or a Hub name")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max_new_tokens", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 means greedy")
    parser.add_argument("--top_k", type=int, default=50)
    parser.add_argument("--top_p", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=None)
    add_config_flag(parser)
    args = parse_command(parser, argv)
    from llmkit.lm.generate import Sampling, check_prompt, generate_text, load_causal_lm

    check_prompt(args.prompt)  # before the model loads
    sampling = Sampling(args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed)
    model, tokenizer = load_causal_lm(args.model)
    generate_text(model, tokenizer, args.prompt, sampling, stream=True)


def _rag(argv: list[str]) -> None:
    from llmkit.rag.commands import main

    main(argv)


def _space_parser() -> argparse.ArgumentParser:
    parser, sub = subcommand_parser("llmkit space", "Build, check and deploy Hugging Face Spaces.")
    build = sub.add_parser("build", help="assemble a Space folder from a template")
    from llmkit.spaces.templates import TEMPLATES  # the registry, so the help never misses one

    build.add_argument("template", help="one of " + ", ".join(TEMPLATES))
    build.add_argument("--out", required=True, help="the folder to create")
    build.add_argument("--model", help="a model folder (a recipe's output_dir) the app serves")
    build.add_argument("--store", help="a RAG store the app serves")
    build.add_argument("--title", help="the Space's title (its card and the app's heading)")
    build.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    check = sub.add_parser("check", help="validate a Space folder, then start it and query it")
    check.add_argument("folder")
    check.add_argument("--no_serve", action="store_true", help="only validate the files")
    check.add_argument("--question", help="for a chat app: a question to ask it")
    deploy = sub.add_parser("deploy", help="upload a Space folder to the Hub")
    deploy.add_argument("folder")
    deploy.add_argument("--repo_id", required=True, help="USER/NAME")
    deploy.add_argument("--private", action="store_true")
    deploy.add_argument("--dry_run", action="store_true", help="list what would be uploaded")
    deploy.add_argument(
        "--secret", action="append", default=[], help="an environment variable to set as a Space secret"
    )
    for p in sub.choices.values():
        add_config_flag(p)
    return parser


def _space(argv: list[str]) -> None:
    args = parse_subcommand(_space_parser(), argv)  # snake_case flags, dashed aliases, --config FILE
    from llmkit.errors import UserError
    from llmkit.secrets import redact
    from llmkit.spaces import build_space, deploy_space, serve_and_query, validate

    if args.command == "build":
        out = build_space(
            args.template,
            args.out,
            model=args.model,
            store=args.store,
            title=args.title,
            overwrite=args.overwrite,
        )
        print(f"built {out}: check it with `llmkit space check {shlex.quote(str(out))}`")
    elif args.command == "check":
        problems = validate(args.folder)
        if problems:
            raise UserError(f"{args.folder} has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
        print(f"{args.folder}: files OK")
        if not args.no_serve:
            result = serve_and_query(args.folder, question=args.question)
            print(f"served at {result['url']} with endpoints {', '.join(result['endpoints'])}")
            if "prediction" in result:
                print(f"{result['image']}: {result['prediction']}")
            if "answer" in result:
                print(redact(f"answer: {result['answer']}"))
    else:
        deploy_space(
            args.folder, args.repo_id, private=args.private, dry_run=args.dry_run, secrets=args.secret
        )


def _app(argv: list[str]) -> None:
    from llmkit.apps import APPS
    from llmkit.errors import UserError

    if not argv or argv[0] in ("-h", "--help"):
        print("usage: llmkit app NAME [options]\n\napps:")
        print("\n".join(f"  {name:<10}{summary}" for name, (_, summary) in APPS.items()))
        return
    if argv[0] not in APPS:
        raise UserError(f"unknown app {argv[0]!r}; pick one of {', '.join(APPS)}.")
    module = importlib.import_module(f"llmkit.apps.{APPS[argv[0]][0]}")
    module.main(argv[1:], prog=f"llmkit app {argv[0]}")


def _recipe(name: str, argv: list[str]) -> None:
    set_program(f"llmkit {name}")
    RECIPES[name].load().main(argv)


COMMANDS = {
    **{name: (lambda argv, name=name: _recipe(name, argv)) for name in RECIPES},
    "app": _app,
    "generate": _generate,
    "rag": _rag,
    "space": _space,
}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `llmkit` console script."""
    try:
        _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        # The reader went away (`llmkit --help | head`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        sys.exit(1)


def unknown_command(name: str) -> str:
    """The one line for a mistyped command: the closest real one, if any, and where the list is."""
    close = difflib.get_close_matches(name, COMMANDS, n=1)
    hint = f"did you mean `llmkit {close[0]}`? " if close else ""
    return f"error: unknown command {name!r}; {hint}`llmkit --help` lists every command."


def _main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        sys.exit(0 if argv else 2)
    if argv[0] not in COMMANDS:
        # One line, not the whole usage page above it: the page pushed the error off a short terminal.
        print(unknown_command(argv[0]), file=sys.stderr)
        sys.exit(2)
    run_cli(lambda: COMMANDS[argv[0]](argv[1:]))


if __name__ == "__main__":
    main()
