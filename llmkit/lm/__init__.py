"""GPT-2 presets, pretraining, generation and reports."""

from llmkit.lm.generate import generate_text, load_causal_lm
from llmkit.lm.model import PRESETS, ModelArguments, build_gpt2, count_parameters, flops_per_token
from llmkit.lm.pretrain import PretrainingArguments, pretrain

__all__ = [
    "PRESETS",
    "ModelArguments",
    "PretrainingArguments",
    "build_gpt2",
    "count_parameters",
    "flops_per_token",
    "generate_text",
    "load_causal_lm",
    "pretrain",
]
