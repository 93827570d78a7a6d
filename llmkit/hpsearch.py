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

from llmkit import record
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


STUDY = "study.db"  # every trial so far, in Optuna's SQLite storage: a killed search goes on where it stopped


def search(
    trainer: Trainer,
    space: dict,
    *,
    n_trials: int,
    objective: str,
    direction: str,
    out: Path,
    settings: dict | None = None,
) -> dict:
    """Run the trials (weak ones pruned at their evaluations); write trials.json and trials.png; return the best.

    The trials are kept in `out/study.db`: the same search run again (after a kill, or with more --hp_search_trials)
    runs only the trials it still lacks; one with other `settings` (space, objective, the run's flags) is refused.
    """
    optuna = require("optuna", "hpsearch")
    out.mkdir(parents=True, exist_ok=True)
    study = {"storage": f"sqlite:///{(out / STUDY).resolve()}", "study_name": "llmkit"}
    recorded = {"objective": objective, "direction": direction, "space": space, **(settings or {})}
    with trainer.args.main_process_first(desc="reading the search so far"):
        left = _trials_left(
            optuna, study, n_trials, direction, recorded, out, trainer.is_world_process_zero()
        )

    def compute_objective(metrics: dict) -> float:
        if objective not in metrics:
            raise UserError(f"the evaluation reports no {objective!r} (it has {sorted(metrics)}).")
        return metrics[objective]

    if left > 0:
        trainer.hyperparameter_search(
            hp_space=lambda trial: suggest(trial, space),
            compute_objective=compute_objective,
            n_trials=left,
            direction=direction,
            backend="optuna",
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
            load_if_exists=True,
            **study,
        )
    loaded = optuna.load_study(**study)
    trials = [
        {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params}
        for t in loaded.trials
    ]
    best = {"value": loaded.best_value, "params": loaded.best_params}  # over every run of this search
    if not trainer.is_world_process_zero():
        return {**best, "trials": trials}
    record.write_atomic(
        out / "trials.json",
        json.dumps(
            {"objective": objective, "direction": direction, "trials": trials, "best": best}, indent=2
        ),
    )
    plot_trials(trials, objective, out / "trials.png")
    return {**best, "trials": trials}


def _trials_left(
    optuna, study: dict, n_trials: int, direction: str, recorded: dict, out: Path, main: bool
) -> int:
    """How many of the n_trials the search in `out` still has to run; refuses a search of other settings."""
    if not main:
        if not (out / STUDY).is_file():
            return n_trials
        loaded = optuna.load_study(**study)
    else:
        loaded = optuna.create_study(direction=direction, load_if_exists=True, **study)
    settings = json.dumps(recorded, sort_keys=True, default=str)
    saved = loaded.user_attrs.get("settings")
    if saved is None and main:
        loaded.set_user_attr("settings", settings)
    elif saved is not None and saved != settings:
        before, now = json.loads(saved), json.loads(settings)
        changed = sorted(_differences(before, now))
        raise UserError(
            f"{out} holds a search with other settings ({', '.join(changed)} differ); its trials would not compare "
            f"with this one's. Rerun it with the flags it was started with, pass a new --output_dir, or delete {out} "
            "to start the search over."
        )
    done = [t for t in loaded.trials if t.state.is_finished() and t.state.name != "FAIL"]
    if main:
        for t in loaded.trials:  # a trial whose process was killed stays RUNNING in the storage for ever
            if t.state.name == "RUNNING":
                loaded._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        if done:
            logger.warning(
                f"continuing the search in {out}: {len(done)} of {n_trials} trials done"
                + ("" if len(done) < n_trials else "; raise --hp_search_trials to search further")
            )
    return n_trials - len(done)


def _differences(before: dict, now: dict, prefix: str = "") -> list[str]:
    """Names of the settings that differ between two recorded searches (`config.learning_rate`)."""
    names = []
    for key in set(before) | set(now):
        a, b = before.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            names += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            names.append(f"{prefix}{key}")
    return names


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


# Flags that change what a run prints, not what it trains: a search continued with another of them is the same search.
# output_dir too: a search folder moved elsewhere is the same search.
DISPLAY_FIELDS = {
    "disable_tqdm",
    "log_level",
    "log_level_replica",
    "report_to",
    "run_name",
    "logging_steps",
    "output_dir",
}


def run_settings(arguments: tuple) -> dict:
    """The run's own non-default arguments (what it was asked for, not what the machine filled in)."""
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
    return config


def write_best_config(path: Path, arguments: tuple, best: dict, output_dir: str) -> Path:
    """A YAML config for the recipe: the run's own non-default arguments with the best hyperparameters on top."""
    config = run_settings(arguments)
    config.update(best["params"])
    config["output_dir"] = output_dir
    # No credential in a file: secret fields (hub_token, ...) are left out, token-like strings redacted.
    config = redact({k: v for k, v in config.items() if not is_secret_field(k)})
    record.write_atomic(path, yaml.safe_dump(config, sort_keys=True))
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
        trainer,
        space,
        n_trials=args.hp_search_trials,
        objective=objective,
        direction=direction,
        out=out,
        settings={"config": {k: v for k, v in run_settings(arguments).items() if k not in DISPLAY_FIELDS}},
    )
    config = out / "best_config.yaml"
    if trainer.is_world_process_zero():
        write_best_config(config, arguments, best, str(Path(args.output_dir) / "best"))
        logger.info(
            f"best trial: {objective} {best['value']:.4f} with {best['params']}\n"
            f"train with it: {command} {config}   (trials: {out / 'trials.png'})"
        )
    return {**best, "config": str(config)}
