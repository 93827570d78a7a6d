"""LoRA through peft: arguments shared by every fine-tuning recipe, sensible target modules per architecture."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import PreTrainedModel

from llmkit.errors import UserError, require
from llmkit.log import get_logger

logger = get_logger(__name__)

# Attention projections to adapt, by model family (peft's own defaults differ between versions).
DEFAULT_TARGETS = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "deberta-v2": ["query_proj", "value_proj"],
    "electra": ["query", "value"],
    "t5": ["q", "v"],
    "mt5": ["q", "v"],
    "bart": ["q_proj", "v_proj"],
    "gpt2": ["c_attn"],
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
}


@dataclass
class LoraArguments:
    """Low-rank adaptation: train small adapter matrices instead of every weight."""

    use_lora: bool = field(
        default=False, metadata={"help": "Fine-tune with LoRA adapters instead of all weights."}
    )
    lora_r: int = field(default=8, metadata={"help": "Rank of the adapter matrices."})
    lora_alpha: int = field(
        default=16, metadata={"help": "Scaling numerator (the update is scaled by alpha / r)."}
    )
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the adapter input."})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "Module names to adapt (default: by architecture)."}
    )
    merge_lora: bool = field(
        default=False,
        metadata={
            "help": "Also save a merged model (adapters folded into the weights) in output_dir/merged."
        },
    )

    def __post_init__(self) -> None:
        # peft's own messages name no flag, and it takes a negative alpha (an update of the wrong sign) silently
        if self.lora_r < 1:
            raise UserError(f"--lora_r must be at least 1, got {self.lora_r}.")
        if not self.lora_alpha > 0:
            raise UserError(f"--lora_alpha must be positive, got {self.lora_alpha}.")
        if not 0 <= self.lora_dropout < 1:
            raise UserError(
                f"--lora_dropout is a probability: 0 or more and below 1, got {self.lora_dropout}."
            )
        if self.merge_lora and not self.use_lora:  # it was ignored without a word
            raise UserError("--merge_lora folds LoRA adapters into the model: it goes with --use_lora.")


def apply_lora(
    model: PreTrainedModel, args: LoraArguments, task_type: str, trainable_heads: list[str] | None = None
):
    """Wrap `model` with LoRA adapters; `trainable_heads` (e.g. the classifier) stay fully trainable."""
    peft = require("peft", "finetune")
    LoraConfig, get_peft_model = peft.LoraConfig, peft.get_peft_model
    # "query,value" (as the defaults are written) is two names, not one that matches nothing
    asked = [name for value in args.lora_target_modules or [] for name in value.split(",") if name.strip()]
    targets = [name.strip() for name in asked] or DEFAULT_TARGETS.get(model.config.model_type)
    if not targets:
        raise UserError(
            f"no default LoRA target modules for model type {model.config.model_type!r}; pass --lora_target_modules "
            f"with some of its layers: {', '.join(layer_names(model))}."
        )
    layers = layer_names(model)
    full = [name for name, _ in model.named_modules()]
    unknown = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in full)]
    if unknown:  # peft adapts the names it finds and ignores the others: a typo trained fewer layers
        raise UserError(
            f"--lora_target_modules {' '.join(unknown)}: no layer of this {model.config.model_type} model has "
            f"that name; its layers LoRA can adapt are named {', '.join(layers)}."
        )
    config = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=targets,
        task_type=task_type,
        modules_to_save=trainable_heads,
    )
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as err:  # e.g. target modules not found in the model
        raise UserError(f"LoRA: {err}") from None
    trainable, total = trainable_parameters(peft_model)
    logger.info(
        f"LoRA r={args.lora_r} on {targets}: {trainable:,} trainable of {total:,} parameters ({100 * trainable / total:.2f}%)"
    )
    return peft_model


def layer_names(model: PreTrainedModel) -> list[str]:
    """The last parts of the names of the model's layers that LoRA can adapt (linear, Conv1D, embedding)."""
    kinds = ("Linear", "Conv1D", "Conv2d", "Embedding")
    return sorted(
        {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if type(module).__name__ in kinds}
    )


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
