"""What every fine-tuning run leaves in output_dir: weights (or adapter), metrics.json, curves, a model card."""

from __future__ import annotations

import copy
import shlex
import shutil
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import Trainer

from llmkit import record
from llmkit.finetune.lora import LoraArguments, trainable_parameters
from llmkit.finetune.trainer import TIMING
from llmkit.plots import plot_loss_curves

# Pipelines whose output names the model's labels: a LoRA run also saves the base weights with the label map,
# because transformers' pipeline() reads the labels from config.json beside the adapter, or else from the base.
LABELLED = ("text-classification", "token-classification", "image-classification")

BODY = """
# {name}

{task} fine-tuned from `{base}` with llmkit on {data}.

## Results

Scores of the kept model: the checkpoint at step {step} (epoch {epoch:g}) of {steps} steps ({epochs:g} epochs),
{selection}.

| split | metric | value |
| --- | --- | --- |
{metrics}

## How to use

```python
{usage}
```

## Training

- method: {method}
- trainable parameters: {trainable:,} of {total:,}
- learning rate: {lr}, batch size per device: {batch}, processes: {world}
"""


# How to load each kind of output folder: transformers' pipeline() where transformers 5 has the task, llmkit's own
# helper where it does not (it has no text2text-generation or question-answering pipeline). `example` is the
# validation set's first input: a string, or a dict of the fields the snippet names.
PIPELINE = (
    'from transformers import pipeline\npipe = pipeline("{tag}", model="{model}")\nprint(pipe({example!r}))'
)
USAGE = {
    "text2text-generation": (
        'from llmkit.finetune.seq2seq import text2text\nprint(text2text("{model}", {example!r}))'
    ),
    "question-answering": (
        'from llmkit.finetune.reader import Reader\nreader = Reader("{model}")  # a LoRA adapter folder too\n'
        "print(reader.read({question!r}, [{context!r}]))"
    ),
}
# The app tab that serves each kind of output folder.
SERVE = {
    "text-classification": "llmkit app models --classifier {model}",
    "token-classification": "llmkit app models --tagger {model}",
    "question-answering": "llmkit app models --qa {model}",
    "text2text-generation": "llmkit app models --text2text {model}",
    "text-generation": "llmkit app models --causal {model}",
}


def usage(pipeline_tag: str, model: str, example: str | dict) -> str:
    """Python that loads the output folder and runs it on the example."""
    fields = example if isinstance(example, dict) else {"example": example}
    return USAGE.get(pipeline_tag, PIPELINE).format(tag=pipeline_tag, model=model, **fields)


def finish_run(
    trainer: Trainer,
    lora_args: LoraArguments,
    *,
    recipe: str,
    task: str,
    pipeline_tag: str,
    base: str,
    data: str,
    eval_metrics: dict,
    example: str | dict,
    headline: list[str],
    extra: dict | None = None,
) -> dict:
    """Save the model (adapter and optionally merged), metrics.json, loss curve and model card; print the summary."""
    out = Path(trainer.args.output_dir)
    if trainer.is_world_process_zero():
        record.clear_reports(out, (*record.REPORTS, "README.md"))  # the model card holds its scores
        # an earlier --merge_lora run's merged model: left beside this run's adapter it would be loaded as this run's
        shutil.rmtree(out / "merged", ignore_errors=True)
    trainer.save_model()  # full weights, or just the adapter for a peft model
    if not trainer.is_world_process_zero():
        return eval_metrics
    model = trainer.model
    trainable, total = trainable_parameters(model)
    load_from = str(out)
    if lora_args.use_lora and pipeline_tag in LABELLED:
        # The base weights and config.json (with id2label) beside the adapter: pipeline(model=out) then loads the base
        # from out and applies the adapter, so the labels are the real ones. Without peft it would be the bare base.
        copy.deepcopy(model).unload().save_pretrained(out)
    if lora_args.use_lora and lora_args.merge_lora:
        merged = model.merge_and_unload()
        merged.save_pretrained(out / "merged")
        trainer.processing_class.save_pretrained(out / "merged")
        load_from = str(out / "merged")
    history = trainer.state.log_history
    train_summary = next((e for e in reversed(history) if "train_runtime" in e), {})
    scores = {k: v for k, v in eval_metrics.items() if isinstance(v, (int, float, str)) or v is None}
    metrics = {
        **scores,
        **(extra or {}),
        **{k: train_summary[k] for k in ("train_runtime", "train_samples_per_second") if k in train_summary},
        "train_loss": train_summary.get("train_loss"),
        "final_train_loss": next((e["loss"] for e in reversed(history) if "loss" in e), None),
        "trainable_parameters": trainable,
        "parameters": total,
        "world_size": trainer.args.world_size,
        "global_step": trainer.state.global_step,
        "learning_rate": trainer.args.learning_rate,
        "headline": record.headline(scores, headline),
    }
    if trainer.args.load_best_model_at_end:
        metrics["selected_by"] = f"eval_{trainer.args.metric_for_best_model.removeprefix('eval_')}"
    plot_loss_curves(history, out / "loss_curve.png", title=f"{task}: {base}")
    card = model_card(
        trainer,
        lora_args,
        metrics,
        task=task,
        pipeline_tag=pipeline_tag,
        base=base,
        data=data,
        example=example,
        load_from=load_from,
    )
    record.write_atomic(out / "README.md", str(card))
    # metrics.json last: it marks the run finished, and the same command then refuses to write anything more, so
    # a kill before it must leave no report unwritten (a kill between it and the card left the run without one)
    metrics = record.write_metrics(out, recipe, metrics)
    if trainer.args.push_to_hub:
        trainer.push_to_hub(commit_message="llmkit fine-tuning run")
    use = usage(pipeline_tag, load_from, example).splitlines()
    if pipeline_tag in SERVE:
        use.append(SERVE[pipeline_tag].format(model=shlex.quote(str(load_from))))  # a shell line
    record.print_summary(metrics, title=f"{recipe}: {task} fine-tuned from {base}", use=use)
    return metrics


def model_card(
    trainer: Trainer,
    lora_args: LoraArguments,
    metrics: dict,
    *,
    task: str,
    pipeline_tag: str,
    base: str,
    data: str,
    example: str | dict,
    load_from: str,
) -> ModelCard:
    """A Hub model card: metadata (base model, pipeline, model-index results) and a readable body."""
    name = Path(trainer.args.output_dir).name
    scores = {
        k: v
        for k, v in metrics.items()
        if k.startswith(("eval_", "test_")) and isinstance(v, (int, float)) and not k.endswith(TIMING)
    }
    data_card = ModelCardData(
        library_name="peft" if lora_args.use_lora and not lora_args.merge_lora else "transformers",
        base_model=base if not Path(base).exists() else None,
        pipeline_tag=pipeline_tag,
        tags=["llmkit", *(["lora"] if lora_args.use_lora else [])],
        model_name=name,
        eval_results=[
            EvalResult(
                task_type=pipeline_tag,
                dataset_type=data,
                dataset_name=data,
                dataset_split=k.split("_", 1)[0].replace("eval", "validation"),
                metric_type=k.split("_", 1)[1],
                metric_value=float(v),
            )
            for k, v in scores.items()
        ]
        or None,
    )
    selection = (
        f"chosen by validation {metrics['selected_by'].removeprefix('eval_')}"
        if "selected_by" in metrics
        else "the last one"
    )
    body = BODY.format(
        name=name,
        task=task,
        base=base,
        data=data,
        step=metrics["reported_step"],
        epoch=metrics["reported_epoch"],
        steps=metrics["trained_steps"],
        epochs=metrics["trained_epochs"],
        selection=selection,
        metrics="\n".join(
            f"| {'test' if k.startswith('test_') else 'validation'} | {k.split('_', 1)[1]} | {v:.4g} |"
            for k, v in scores.items()
        ),
        usage=usage(pipeline_tag, load_from, example),
        method=f"LoRA (r={lora_args.lora_r}, alpha={lora_args.lora_alpha})"
        if lora_args.use_lora
        else "full fine-tuning",
        trainable=metrics["trainable_parameters"],
        total=metrics["parameters"],
        lr=trainer.args.learning_rate,
        batch=trainer.args.per_device_train_batch_size,
        world=trainer.args.world_size,
    )
    return ModelCard(f"---\n{data_card.to_yaml()}\n---\n{body}")
