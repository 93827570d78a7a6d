"""What every fine-tuning run leaves in output_dir: weights (or adapter), metrics.json, curves, a model card."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import Trainer

from llmkit.finetune.lora import LoraArguments, trainable_parameters
from llmkit.plots import plot_loss_curves

CARD = """---
library_name: {library}
base_model: {base}
pipeline_tag: {pipeline_tag}
tags: [llmkit{lora_tag}]
---

# {name}

{task} fine-tuned from `{base}` with llmkit on {data}.

## Results (validation set)

| metric | value |
| --- | --- |
{metrics}

## How to use

```python
from transformers import pipeline
pipe = pipeline("{pipeline_tag}", model="{load_from}")
print(pipe({example!r}))
```

## Training

- method: {method}
- trainable parameters: {trainable:,} of {total:,}
- epochs: {epochs}, steps: {steps}, learning rate: {lr}, batch size per device: {batch}, processes: {world}
"""


def finish_run(trainer: Trainer, lora_args: LoraArguments, task: str, pipeline_tag: str, base: str, data: str,
               eval_metrics: dict, example: str, extra: dict | None = None) -> dict:
    """Save the model (adapter and optionally merged), tokenizer, metrics.json, loss curve and model card."""
    out = Path(trainer.args.output_dir)
    trainer.save_model()  # full weights, or just the adapter for a peft model
    if not trainer.is_world_process_zero():
        return eval_metrics
    model = trainer.model
    load_from = str(out)
    if lora_args.use_lora and lora_args.merge_lora:
        merged = model.merge_and_unload()
        merged.save_pretrained(out / "merged")
        trainer.processing_class.save_pretrained(out / "merged")
        load_from = str(out / "merged")
    trainable, total = trainable_parameters(model)
    train_summary = next((e for e in reversed(trainer.state.log_history) if "train_runtime" in e), {})
    metrics = {**{k: v for k, v in eval_metrics.items() if isinstance(v, (int, float))}, **(extra or {}),
               **{k: train_summary[k] for k in ("train_runtime", "train_samples_per_second", "train_loss") if k in train_summary},
               "trainable_parameters": trainable, "parameters": total, "world_size": trainer.args.world_size,
               "global_step": trainer.state.global_step}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_loss_curves(trainer.state.log_history, out / "loss_curve.png", title=f"{task}: {base}")
    shown = {k: v for k, v in metrics.items() if k.startswith("eval_") and k not in ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second")}
    card = CARD.format(
        library="peft" if lora_args.use_lora and not lora_args.merge_lora else "transformers", base=base,
        pipeline_tag=pipeline_tag, lora_tag=", lora" if lora_args.use_lora else "", name=out.name, task=task, data=data,
        metrics="\n".join(f"| {k.removeprefix('eval_')} | {v:.4g} |" for k, v in shown.items()), load_from=load_from,
        example=example, method=f"LoRA (r={lora_args.lora_r}, alpha={lora_args.lora_alpha})" if lora_args.use_lora else "full fine-tuning",
        trainable=trainable, total=total, epochs=trainer.args.num_train_epochs, steps=trainer.state.global_step,
        lr=trainer.args.learning_rate, batch=trainer.args.per_device_train_batch_size, world=trainer.args.world_size,
    )
    (out / "README.md").write_text(card)
    if trainer.args.push_to_hub:
        trainer.push_to_hub(commit_message="llmkit fine-tuning run")
    return metrics
