"""One Accelerate training loop shared by every classic baseline: devices, precision, several processes,
backward + clipping + optimizer step in one place, atomic checkpoints every epoch (and on Ctrl-C),
automatic resume, metrics.json and loss_curve.png in the shape the Trainer recipes write them."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from llmkit import record
from llmkit.classic import checkpoints
from llmkit.classic.arguments import ClassicArguments
from llmkit.classic.launch import make_accelerator
from llmkit.errors import UserError
from llmkit.interrupt import GracefulInterrupt, TrainingInterrupted
from llmkit.launch import check_launch, configure_threads, prepare_output_dir
from llmkit.log import configure_logging, get_logger
from llmkit.plots import plot_history, plot_loss_curves

if TYPE_CHECKING:  # accelerate is imported when a run starts, not when a recipe's --help is read
    from accelerate import Accelerator

logger = get_logger(__name__)

Step = Callable[[dict, tuple, Callable[[str, torch.Tensor], None]], dict]


def fit(
    args: ClassicArguments,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    step: Step,
    *,
    train: Dataset,
    config: dict,
    evaluate: Callable[[dict], dict] | None = None,
    on_epoch_end: Callable[[int, dict, Path], None] | None = None,
    extra: dict | None = None,
    headline: tuple[str, ...] = ("accuracy", "loss"),
    summary: bool = True,
) -> dict:
    """Train for args.num_train_epochs, resuming from the newest complete checkpoint; returns metrics.json's content.

    `step(modules, batch, update)` computes losses and calls `update(name, loss)` for each optimizer to
    step (the loop does backward, clipping, the step and zero-grad) and returns numbers to log.
    `evaluate(modules)` (its keys get an `eval_` prefix) and `on_epoch_end(epoch, modules, output_dir)`
    run on the main process with the models in eval mode.
    """
    run = _set_up(args, modules, optimizers, train)
    data = checkpoints.data_fingerprint(train)
    config = json.loads(json.dumps(config))  # as a checkpoint's state file reads back (tuples become lists)
    _resume(run, data, config)
    # where a checkpoint saved mid-epoch is in the epoch depends on it
    run.state["batch_shape"] = [args.per_device_train_batch_size, run.accelerator.num_processes]
    run.state["data"], run.state["config"] = data, config
    if run.accelerator.log_with:
        plain = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in asdict(args).items()}
        run.accelerator.init_trackers(Path(args.output_dir).name, config=plain)
    with GracefulInterrupt() as interrupt:
        for epoch in range(run.state["epoch"], args.num_train_epochs):
            _train_epoch(run, step, epoch, interrupt)
            _refuse_diverged(run, epoch)  # before the checkpoint: the last one saved stays a usable model
            row = _evaluate_epoch(run, epoch, evaluate=evaluate, on_epoch_end=on_epoch_end)
            run.state.update(epoch=epoch + 1, batch=0, sums={}, count=0)
            run.state["log_history"].append(row)
            _save(run.accelerator, run.root, run.state, args.save_total_limit)
    if run.accelerator.log_with:
        run.accelerator.end_training()
    if not run.accelerator.is_main_process:
        return {}
    return _finish(run, config, extra=extra, headline=headline, summary=summary)


def _fresh_state() -> dict:
    """Where a run starts: what a checkpoint saves and a resumed run continues from."""
    return {"epoch": 0, "batch": 0, "global_step": 0, "sums": {}, "count": 0, "recent": [], "log_history": []}


@dataclass
class _Run:
    """One training run's prepared parts (models, optimizers, loader on the accelerator) and its progress."""

    args: ClassicArguments
    accelerator: Accelerator
    out: Path
    mods: dict[str, nn.Module]
    opts: dict[str, torch.optim.Optimizer]
    loader: DataLoader
    state: dict = field(default_factory=_fresh_state)
    rows_before: int = 0  # log_history rows of the runs this one resumed

    @property
    def root(self) -> Path:
        return self.out / "checkpoints"

    def update(self, name: str, loss: torch.Tensor) -> None:
        """Backward, clip and step optimizer `name`: the `update` a step function calls."""
        self.accelerator.backward(loss)
        if self.args.max_grad_norm > 0:
            self.accelerator.clip_grad_norm_(self.mods[name].parameters(), self.args.max_grad_norm)
        self.opts[name].step()
        for opt in self.opts.values():  # a GAN's generator loss also fills the discriminator's gradients
            opt.zero_grad(set_to_none=True)


def check_one_batch(examples: int, args: ClassicArguments, processes: int | None = None) -> None:
    """Refuse a training set smaller than one batch per process (the loader drops incomplete batches)."""
    processes = processes or int(os.environ.get("WORLD_SIZE", "1"))
    batch_size = args.per_device_train_batch_size
    if examples < batch_size * processes:
        raise UserError(
            f"the training set has {examples} examples, fewer than one batch of {batch_size} per process; "
            "lower --per_device_train_batch_size."
        )


def _set_up(
    args: ClassicArguments,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    train: Dataset,
) -> _Run:
    """Logging, threads, the output folder, the accelerator; models, optimizers and loader prepared on it."""
    check_launch()
    configure_logging(args.log_level, args.log_level_replica)
    configure_threads()
    out = prepare_output_dir(args.output_dir)
    accelerator = make_accelerator(args)
    check_one_batch(len(train), args, accelerator.num_processes)
    loader = DataLoader(train, batch_size=args.per_device_train_batch_size, shuffle=True, drop_last=True)
    names, opt_names = list(modules), list(optimizers)
    prepared = accelerator.prepare(*modules.values(), *optimizers.values(), loader)
    mods = dict(zip(names, prepared[: len(names)]))
    opts = dict(zip(opt_names, prepared[len(names) : -1]))
    return _Run(args, accelerator, out, mods, opts, loader=prepared[-1])


def _resume(run: _Run, data: dict, config: dict) -> None:
    """Load the newest complete checkpoint, if any, and continue from its progress."""
    accelerator = run.accelerator
    root = run.root
    found = checkpoints.newest_complete(root, announce=accelerator.is_main_process) if root.is_dir() else None
    if not found:
        return
    asked = checkpoints.learning_rates(run.opts)
    try:
        accelerator.load_state(str(found[0]))
    except (RuntimeError, KeyError, ValueError) as err:
        raise UserError(
            f"{found[0]} was saved by a differently configured model ({str(err).splitlines()[0]}); "
            "use another --output_dir or delete its checkpoints folder."
        ) from None
    checkpoints.refuse_changed_rate(found[0], asked, checkpoints.learning_rates(run.opts))
    checkpoints.refuse_changed_batch(
        found[0], found[1], [run.args.per_device_train_batch_size, accelerator.num_processes]
    )
    checkpoints.refuse_other_data(found[0], found[1], data)
    checkpoints.refuse_other_config(found[0], found[1], config)
    run.state = found[1]
    run.rows_before = len(run.state["log_history"])
    logger.info(f"resuming from {found[0]} (epoch {run.state['epoch']}, step {run.state['global_step']})")


def _train_epoch(run: _Run, step: Step, epoch: int, interrupt: GracefulInterrupt) -> None:
    """One pass over the data (the rest of it when resuming mid-epoch); on Ctrl-C, save and stop."""
    accelerator, state, loader = run.accelerator, run.state, run.loader
    loader.set_epoch(epoch)  # the epoch's shuffle depends on the seed and the epoch alone
    batches = accelerator.skip_first_batches(loader, state["batch"]) if state["batch"] else loader
    for m in run.mods.values():
        m.train()
    for batch in batches:
        logs = {k: float(v) for k, v in step(run.mods, batch, run.update).items()}
        _account(state, logs, run.args.logging_steps, epoch, len(loader))
        if _stop_requested(accelerator, interrupt):
            folder = _save(accelerator, run.root, state, run.args.save_total_limit)
            raise TrainingInterrupted(
                f"saved {folder} at step {state['global_step']}; run the same command to resume."
            )


def _refuse_diverged(run: _Run, epoch: int) -> None:
    """End a run whose weights hold NaN or inf: it went on to exit 0 with NaN in metrics.json. The weights are
    the same on every process, so all of them stop here together."""
    if all(torch.isfinite(p).all() for m in run.mods.values() for p in m.parameters()):
        return
    from llmkit.lm.divergence import diverged  # only now: llmkit.lm loads transformers

    loss = run.state["sums"].get("loss", float("nan")) / max(run.state["count"], 1)
    raise diverged(
        f"epoch {epoch + 1} (step {run.state['global_step']})",
        f"the weights hold NaN or infinite values (the epoch's mean training loss: {loss:.4g}); nothing of this "
        "epoch was saved",
        run.args.learning_rate,
    )


def _evaluate_epoch(
    run: _Run,
    epoch: int,
    *,
    evaluate: Callable[[dict], dict] | None,
    on_epoch_end: Callable[[int, dict, Path], None] | None,
) -> dict:
    """The epoch's row of log_history: its mean training numbers and (main process) the evaluation."""
    accelerator, state = run.accelerator, run.state
    row = {
        "epoch": epoch + 1,
        "step": state["global_step"],
        **{f"train_{k}": v / max(state["count"], 1) for k, v in state["sums"].items()},
    }
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        plain = {k: accelerator.unwrap_model(m).eval() for k, m in run.mods.items()}
        with torch.no_grad():
            row.update(
                {
                    k if k.startswith("eval_") else f"eval_{k}": v
                    for k, v in (evaluate(plain) if evaluate else {}).items()
                }
            )
            if on_epoch_end:
                on_epoch_end(epoch + 1, plain, run.out)
        logger.info("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
        accelerator.log(
            {k: v for k, v in row.items() if isinstance(v, (int, float))}, step=state["global_step"]
        )
    return row


def _finish(run: _Run, config: dict, *, extra: dict | None, headline: tuple[str, ...], summary: bool) -> dict:
    """The end of a run (main process): final weights and config.json, then metrics.json and the summary."""
    args, accelerator, state = run.args, run.accelerator, run.state
    weights = {name: accelerator.unwrap_model(m).state_dict() for name, m in run.mods.items()}
    record.clear_reports(run.out, (*record.REPORTS, "curves.png"))  # they describe the weights being replaced
    _save_weights(run.out, weights, {**config, "args": asdict(args)})
    last = next((row for row in reversed(state["log_history"]) if "train_loss" in row), {})
    # this run's epochs only: a resumed run printed the mean of every run's ("averaged over this run"), and a
    # re-run with nothing left to train showed the earlier run's mean as its own
    losses = [row["train_loss"] for row in state["log_history"][run.rows_before :] if "train_loss" in row]
    metrics = {
        **{k: v for k, v in last.items() if k not in ("step", "train_loss")},
        "train_loss": sum(losses) / len(losses) if losses else None,
        **(extra or {}),
        "global_step": state["global_step"],
        "world_size": accelerator.num_processes,
    }
    return write_report(
        args,
        metrics,
        state["log_history"],
        title=config.get("architecture", "model"),
        headline=headline,
        summary=summary,
    )


def _account(state: dict, logs: dict, logging_steps: int, epoch: int, steps_per_epoch: int) -> None:
    """Add one step's numbers to the epoch means and, every logging_steps, a point of the loss curve."""
    for k, v in logs.items():
        state["sums"][k] = state["sums"].get(k, 0.0) + v
    state["count"] += 1
    state["batch"] += 1
    state["global_step"] += 1
    state["recent"].append(logs.get("loss", 0.0))
    if state["global_step"] % logging_steps == 0:
        loss = sum(state["recent"]) / len(state["recent"])
        state["log_history"].append(
            {
                "epoch": round(epoch + state["batch"] / steps_per_epoch, 3),
                "step": state["global_step"],
                "loss": loss,
            }
        )
        state["recent"] = []


def _stop_requested(accelerator, interrupt: GracefulInterrupt) -> bool:
    """Whether any process got Ctrl-C: all of them must save the same step, or the save would deadlock."""
    if accelerator.num_processes == 1:
        return interrupt.requested
    flag = torch.tensor([float(interrupt.requested)], device=accelerator.device)
    return bool(accelerator.gather(flag).max() > 0)


def _save(accelerator, root: Path, state: dict, keep: int) -> Path:
    """Models, optimizers and RNG states into a temporary folder, renamed into place once whole."""
    tmp = root / f".tmp-{checkpoints.PREFIX}{state['global_step']}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        tmp = checkpoints.temporary_folder(root, state["global_step"])
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    final = tmp.with_name(tmp.name.removeprefix(".tmp-"))
    if accelerator.is_main_process:
        checkpoints.publish(tmp, state, keep)
    accelerator.wait_for_everyone()
    return final


def _save_weights(out: Path, weights: dict[str, dict], config: dict) -> None:
    """Each module's final weights (`NAME.safetensors`) and config.json, written atomically."""
    from safetensors.torch import save

    for name, state in weights.items():
        record.write_atomic(out / f"{name}.safetensors", save({k: v.contiguous() for k, v in state.items()}))
    record.write_atomic(out / "config.json", json.dumps(config, indent=2))


def write_report(
    args: ClassicArguments,
    metrics: dict,
    log_history: list[dict],
    *,
    title: str,
    headline: tuple[str, ...] = ("accuracy", "loss"),
    summary: bool = True,
    notes: tuple[str, ...] = (),
) -> dict:
    """metrics.json (the common keys, the run's own figures and its log_history), loss_curve.png, curves.png
    (one panel per logged number), and the closing summary; `metrics` holds global_step, the optimizer steps
    (counting epochs instead reported one epoch of many batches as 1 step)."""
    out = Path(args.output_dir)
    epoch_losses = [row["train_loss"] for row in log_history if "train_loss" in row]
    metrics = {
        "train_loss": sum(epoch_losses) / len(epoch_losses) if epoch_losses else None,
        "final_train_loss": epoch_losses[-1] if epoch_losses else None,
        **metrics,
        "headline": record.headline(metrics, headline),
        "log_history": log_history,
    }
    _refuse_non_finite(args, metrics, log_history)
    metrics = record.write_metrics(out, args.recipe, metrics)
    plot_loss_curves(log_history, out / "loss_curve.png", title=title, ylabel="training loss")
    plot_history([row for row in log_history if "train_loss" in row], out / "curves.png", title)
    if summary:
        summarize(args, metrics, title=title, notes=notes)
    return metrics


def _finite(value: object) -> bool:
    """Whether every number in `value` (nested in dicts and lists) is finite: strict JSON holds no NaN or inf."""
    try:
        json.dumps(value, allow_nan=False, default=str)
    except ValueError:
        return False
    return True


def _refuse_non_finite(args: ClassicArguments, metrics: dict, log_history: list[dict]) -> None:
    """Refuse to write NaN or Infinity into metrics.json (not JSON to most parsers): the run diverged, and the
    error names the first epoch whose numbers broke, or the figure, and the learning rate to lower."""
    if _finite(log_history) and _finite(metrics):
        return
    from llmkit.lm.divergence import diverged  # only now: llmkit.lm loads transformers

    row = next((r for r in log_history if not _finite(r)), None)
    key, value = next((k, v) for k, v in (row or metrics).items() if not _finite(v))
    where = f"epoch {row['epoch']} (step {row['step']})" if row else "the end of training"
    what = f"{key} is {value}" if isinstance(value, float) else f"{key} holds a NaN or infinite number"
    # the DBN's RBM pretraining has its own learning rate
    flag = "rbm_learning_rate" if key == "rbm_history" else "learning_rate"
    raise diverged(where, what, getattr(args, flag), flag=f"--{flag}")


def summarize(args: ClassicArguments, metrics: dict, *, title: str, notes: tuple[str, ...] = ()) -> str:
    """The closing summary of a classic run: where it is, its headline figures, the app page that serves it."""
    out = Path(args.output_dir)
    where = shlex.quote(str(out))  # a shell line: a folder with a space stays one argument
    use = [f"llmkit app classic --{args.app_flag} {where}"] if args.app_flag else [f"the files in {out}"]
    metrics = {"output_dir": str(out), **metrics}  # a run that stopped before writing metrics.json has none
    return record.print_summary(metrics, title=f"{args.recipe}: {title}", use=use, notes=notes)
