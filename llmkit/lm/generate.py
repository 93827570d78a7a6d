"""Text generation from any causal LM folder (llmkit's outputs or a Hub model)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    LogitsProcessorList,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TextStreamer,
)
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from llmkit.errors import UserError
from llmkit.lm.model import suppress_padded_ids
from llmkit.loading import load_pretrained
from llmkit.log import get_logger
from llmkit.sentences import is_text

logger = get_logger(__name__)


@dataclass
class Sampling:
    """How each next token is chosen, for `generate_text` and `generate_steps` alike: greedy when temperature
    is 0, else temperature, top-k (0: off) and top-p; `seed` makes a run repeatable (None: not seeded)."""

    max_new_tokens: int = 60
    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 0.95
    seed: int | None = 0

    def __post_init__(self) -> None:
        finite = 0 <= self.temperature < math.inf  # nan compares false: refused too
        wrong = [
            f"{name} is {value} but must be {rule}"
            for name, value, ok, rule in (
                ("temperature", self.temperature, finite, "a finite number >= 0 (0: greedy)"),
                ("top_p", self.top_p, 0 < self.top_p <= 1, "in (0, 1] (1: off)"),
                ("top_k", self.top_k, self.top_k >= 0, ">= 0 (0: off)"),
                ("max_new_tokens", self.max_new_tokens, self.max_new_tokens >= 1, ">= 1"),
            )
            if not ok
        ]
        if wrong:
            raise UserError("; ".join(wrong) + ". Pass a value in range.")

    def generate_kwargs(self) -> dict:
        """The same choice as `model.generate` arguments."""
        if self.temperature == 0:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p}

    def warpers(self) -> LogitsProcessorList:
        """The same choice as logits processors, for a hand-written decoding loop."""
        if self.temperature == 0:
            return LogitsProcessorList()
        warpers = [TemperatureLogitsWarper(self.temperature), TopPLogitsWarper(self.top_p)]
        if self.top_k:
            warpers.insert(1, TopKLogitsWarper(self.top_k))
        return LogitsProcessorList(warpers)

    def room(self, model: PreTrainedModel, prompt_tokens: int) -> int:
        """New tokens that fit: max_new_tokens, or what is left of the model's context after the prompt."""
        context = model.config.max_position_embeddings
        limit = context - prompt_tokens
        if limit < 1:
            raise UserError(
                f"the prompt is {prompt_tokens} tokens, which leaves no room in the model's context of {context} "
                f"tokens; shorten it to at most {context - 1} tokens."
            )
        if limit < self.max_new_tokens:
            logger.info(
                f"generating at most {limit} new tokens, not {self.max_new_tokens}: the prompt's {prompt_tokens} "
                f"tokens leave that much of the model's {context}-token context"
            )
        return min(self.max_new_tokens, limit)


def load_causal_lm(name_or_path: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer for generation, in eval mode."""
    # load_pretrained's messages already say to pass a training run's output_dir or a Hub name: no extra hint
    config = load_pretrained(AutoConfig, name_or_path)
    _check_causal(name_or_path, config)  # before loading weights: a classifier's LM head would be random
    tokenizer = load_pretrained(AutoTokenizer, name_or_path)
    model = load_pretrained(AutoModelForCausalLM, name_or_path)
    if not all(torch.isfinite(p).all() for p in model.parameters()):  # sampling was a multinomial traceback
        raise UserError(
            f"{name_or_path}: the model's weights hold NaN or infinite values (its training diverged), so it "
            "cannot generate text; train it again with a lower --learning_rate, or load an earlier checkpoint-N."
        )
    return model.eval(), tokenizer


def _check_causal(name_or_path: str, config: PretrainedConfig) -> None:
    """Refuse a model trained for another task: its LM head would be random and its text gibberish."""
    causal = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    trained_as = config.architectures or []
    if type(config).model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or (
        trained_as and not causal & set(trained_as)
    ):
        what = ", ".join(trained_as) or config.model_type
        raise UserError(
            f"{name_or_path!r} is a {what}, not a causal language model, so it cannot generate text; "
            "pass a text-generation model (the output_dir of pretrain_gpt2.py or finetune_gpt2.py, or a Hub name such as gpt2)."
        )


def check_prompt(prompt: str) -> None:
    """Refuse a prompt that is empty, or not text (a non-UTF-8 terminal's bytes were a tokenizer TypeError)."""
    if not prompt:
        raise UserError("the prompt is empty; give the text to continue.")
    if not is_text(prompt):
        raise UserError(
            "the prompt holds bytes that are not UTF-8 text; set the terminal to UTF-8 (e.g. LANG=C.UTF-8) "
            "and type it again."
        )


@torch.inference_mode()
def generate_text(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    sampling: Sampling | None = None,
    *,
    stream: bool = False,
) -> str:
    """Sample a continuation of `prompt` (default Sampling()); optionally stream it to stdout."""
    check_prompt(prompt)
    sampling = sampling or Sampling()
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
    suppress_padded_ids(model, tokenizer)  # a padded vocabulary's extra rows are not tokens
    out = model.generate(
        **inputs,
        max_new_tokens=sampling.room(model, inputs["input_ids"].shape[1]),
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        streamer=TextStreamer(tokenizer, skip_prompt=False, skip_special_tokens=True) if stream else None,
        **sampling.generate_kwargs(),
    )
    return tokenizer.decode(out[0], skip_special_tokens=True)
