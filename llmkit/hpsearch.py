"""Hyperparameter search with Optuna through `Trainer.hyperparameter_search`: a search space from YAML or
defaults, median pruning of weak trials, the best settings written as a config file the recipe accepts,
and a plot of the trials."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable
from pathlib import Path

import yaml
from transformers import Trainer, TrainingArguments

from llmkit.errors import UserError, require
from llmkit.log import get_logger
from llmkit.plots import plt
from llmkit.secrets import is_secret_field, redact

logger = get_logger(__name__)

LORA_FIELDS = ("lora_r", "lora_alpha", "lora_dropout")

PRETRAIN_SPACE = {
    "learning_rate": {"low": 1e-4, "high": 3e-3, "log": True},
    "warmup_steps": {"low": 0.0, "high": 0.2},
    "weight_decay": {"low": 0.0, "high": 0.2},
    "per_device_train_batch_size": {"choices": [8, 16, 32]},
}
FINETUNE_SPACE = {
    "learning_rate": {"low": 1e-5, "high": 5e-4, "log": True},
    "warmup_steps": {"low": 0.0, "high": 0.2},
    "weight_decay": {"low": 0.0, "high": 0.1},
    "per_device_train_batch_size": {"choices": [8, 16, 32]},
}
LORA_SPACE = {"lora_r": {"choices": [4, 8, 16]}, "learning_rate": {"low": 1e-4, "high": 3e-3, "log": True}}


def load_space(path: str | None, default: dict) -> dict:
    """The search space from a YAML file (or the default), checked: known parameters, low <= high, choices non-empty."""
    if path:
        if not Path(path).is_file():
            raise UserError(f"search-space file {path} does not exist.")
        try:
            space = yaml.safe_load(Path(path).read_text(errors="replace")) or {}
        except yaml.YAMLError as err:
            raise UserError(f"search-space file {path} is not valid YAML ({err}).") from None
        if not isinstance(space, dict):
            raise UserError(
                f"search-space file {path} must map each hyperparameter to its range, e.g. "
                "`learning_rate: {low: 1.0e-5, high: 5.0e-4, log: true}`."
            )
    else:
        space = default
    known = {f.name for f in dataclasses.fields(TrainingArguments)} | set(LORA_FIELDS)
    checked = {}
    for name, spec in space.items():
        if name not in known:
            raise UserError(
                f"unknown hyperparameter {name!r} in the search space; use TrainingArguments fields or {', '.join(LORA_FIELDS)}."
            )
        if not isinstance(spec, dict) or not ("choices" in spec or {"low", "high"} <= set(spec)):
            raise UserError(f"search space for {name!r} needs either 'choices: [...]' or 'low' and 'high'.")
        spec = {**spec, **{end: _number(spec[end], name, end) for end in ("low", "high") if end in spec}}
        if "choices" in spec and not (isinstance(spec["choices"], list) and spec["choices"]):
            raise UserError(f"search space for {name!r}: choices must be a non-empty list, e.g. [8, 16, 32].")
        if "low" in spec and spec["low"] > spec["high"]:
            raise UserError(
                f"search space for {name!r}: low {spec['low']} is greater than high {spec['high']}."
            )
        if spec.get("log") and spec.get("low", 1) <= 0:
            raise UserError(f"search space for {name!r}: a log scale needs low > 0.")
        checked[name] = spec
    return checked


def _number(value, name: str, end: str) -> int | float:
    """A range end as a number: YAML reads `1e-5` (no dot) as a string."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UserError(f"search space for {name!r}: {end} must be a number, got {value!r}.")
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise UserError(f"search space for {name!r}: {end} must be a number, got {value!r}.") from None
    return value


def suggest(trial, space: dict) -> dict:
    """Draw one set of hyperparameters from the space for an Optuna trial."""
    params = {}
    for name, spec in space.items():
        if "choices" in spec:
            params[name] = trial.suggest_categorical(name, spec["choices"])
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int):
            params[name] = trial.suggest_int(name, spec["low"], spec["high"], log=bool(spec.get("log")))
        else:
            params[name] = trial.suggest_float(
                name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log"))
            )
    return params


def search(
    trainer: Trainer, space: dict, *, n_trials: int, objective: str, direction: str, out: Path
) -> dict:
    """Run the trials (weak ones pruned at their evaluations); write trials.json and trials.png; return the best."""
    optuna = require("optuna", "hpsearch")
    out.mkdir(parents=True, exist_ok=True)
    # handed to the study transformers creates, so the trials can be read back
    storage = optuna.storages.InMemoryStorage()

    def compute_objective(metrics: dict) -> float:
        if objective not in metrics:
            raise UserError(f"the evaluation reports no {objective!r} (it has {sorted(metrics)}).")
        return metrics[objective]

    best = trainer.hyperparameter_search(
        hp_space=lambda trial: suggest(trial, space),
        compute_objective=compute_objective,
        n_trials=n_trials,
        direction=direction,
        backend="optuna",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        storage=storage,
        study_name="llmkit",
    )
    trials = [
        {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params}
        for t in optuna.load_study(study_name="llmkit", storage=storage).trials
    ]
    (out / "trials.json").write_text(
        json.dumps(
            {
                "objective": objective,
                "direction": direction,
                "trials": trials,
                "best": {"value": best.objective, "params": best.hyperparameters},
            },
            indent=2,
        )
    )
    plot_trials(trials, objective, out / "trials.png")
    return {"value": best.objective, "params": best.hyperparameters, "trials": trials}


def plot_trials(trials: list[dict], objective: str, path: Path) -> None:
    """Objective per trial (pruned ones marked), and the objective against each numeric parameter."""
    done = [t for t in trials if t["value"] is not None]
    names = sorted({k for t in done for k, v in t["params"].items() if isinstance(v, (int, float))})
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(3.3 * (1 + len(names)), 3), dpi=100, squeeze=False)
    ax = axes[0][0]
    for t in trials:
        ax.scatter(
            t["number"],
            t["value"] if t["value"] is not None else float("nan"),
            c="tab:gray" if t["state"] == "PRUNED" else "tab:blue",
        )
    ax.set(title=f"{objective} per trial (grey: pruned)", xlabel="trial")
    for ax, name in zip(axes[0][1:], names):
        ax.scatter(
            [t["params"][name] for t in done if name in t["params"]],
            [t["value"] for t in done if name in t["params"]],
        )
        ax.set(title=name, xscale="log" if name == "learning_rate" else "linear")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# Arguments llmkit fills in from the machine it runs on (use_cpu without CUDA, bf16 from --precision auto, ...):
# written into the config, they would make a GPU machine train as the search's CPU did.
MACHINE_FIELDS = {
    "use_cpu",
    "bf16",
    "fp16",
    "tf32",
    "torch_compile",
    "dataloader_pin_memory",
    "dataloader_num_workers",
}


def write_best_config(path: Path, arguments: tuple, best: dict, output_dir: str) -> Path:
    """A YAML config for the recipe: the run's own non-default arguments with the best hyperparameters on top."""
    config: dict = {}
    for obj in arguments:
        for f in dataclasses.fields(obj):
            if not f.init or f.name.startswith("hp_search") or f.name in MACHINE_FIELDS:
                continue
            value = getattr(obj, f.name)
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            value = value.value if isinstance(value, enum.Enum) else value
            default = default.value if isinstance(default, enum.Enum) else default
            if value != default and _plain(value):
                config[f.name] = value
    config.update(best["params"])
    config["output_dir"] = output_dir
    # No credential in a file: secret fields (hub_token, ...) are left out, token-like strings redacted.
    config = redact({k: v for k, v in config.items() if not is_secret_field(k)})
    path.write_text(yaml.safe_dump(config, sort_keys=True))
    return path


def _plain(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def run_search(
    make_trainer: Callable[[Callable], Trainer],
    model_init: Callable,
    arguments: tuple,
    args,
    *,
    default_space: dict,
    objective: str,
    direction: str,
    command: str,
) -> dict:
    """The `--hp_search_trials N` path of a recipe: search, then write best_config.yaml beside the trials.

    `command` (`llmkit pretrain`) is how the summary says to train with that config."""
    space = load_space(args.hp_search_space, default_space)
    out = Path(args.output_dir) / "hp_search"
    trainer = make_trainer(model_init)
    best = search(
        trainer, space, n_trials=args.hp_search_trials, objective=objective, direction=direction, out=out
    )
    config = write_best_config(out / "best_config.yaml", arguments, best, str(Path(args.output_dir) / "best"))
    if trainer.is_world_process_zero():
        logger.info(
            f"best trial: {objective} {best['value']:.4f} with {best['params']}\n"
            f"train with it: {command} {config}   (trials: {out / 'trials.png'})"
        )
    return {**best, "config": str(config)}
