"""GPT-2 presets, pretraining, generation and reports."""

from llmkit.lm.generate import Sampling, generate_text, load_causal_lm
from llmkit.lm.loss import linear_cross_entropy, use_fast_loss
from llmkit.lm.model import (
    PRESETS,
    ModelArguments,
    build_gpt2,
    count_parameters,
    flops_per_token,
    pad_vocabulary,
)
from llmkit.lm.pretrain import PretrainingArguments, pretrain

__all__ = [
    "PRESETS",
    "ModelArguments",
    "PretrainingArguments",
    "Sampling",
    "build_gpt2",
    "count_parameters",
    "flops_per_token",
    "generate_text",
    "linear_cross_entropy",
    "load_causal_lm",
    "pad_vocabulary",
    "pretrain",
    "use_fast_loss",
]
