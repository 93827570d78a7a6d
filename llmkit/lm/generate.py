"""Text generation from any causal LM folder (llmkit's outputs or a Hub model)."""

from __future__ import annotations

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TextStreamer,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from llmkit.errors import UserError
from llmkit.loading import load_pretrained


def load_causal_lm(name_or_path: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer for generation, in eval mode."""
    hint = "Pass the output_dir of a training run or a Hub name such as gpt2."
    config = load_pretrained(AutoConfig, name_or_path, hint=hint)
    _check_causal(name_or_path, config)  # before loading weights: a classifier's LM head would be random
    tokenizer = load_pretrained(AutoTokenizer, name_or_path, hint=hint)
    model = load_pretrained(AutoModelForCausalLM, name_or_path, hint=hint)
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


@torch.inference_mode()
def generate_text(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    max_new_tokens: int = 60,
    temperature: float = 0.8,
    top_k: int = 50,
    top_p: float = 0.95,
    seed: int | None = 0,
    stream: bool = False,
) -> str:
    """Sample a continuation of `prompt` (greedy when temperature is 0); optionally stream it to stdout."""
    if not prompt:
        raise UserError("the prompt is empty; give the text to continue.")
    if temperature < 0 or not 0 < top_p <= 1 or top_k < 0 or max_new_tokens < 1:
        raise UserError("need temperature >= 0, 0 < top_p <= 1, top_k >= 0 and max_new_tokens >= 1.")
    if seed is not None:
        torch.manual_seed(seed)
    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
    limit = model.config.max_position_embeddings - inputs["input_ids"].shape[1]
    if limit < 1:
        raise UserError(
            f"the prompt is {inputs['input_ids'].shape[1]} tokens, as long as the model's whole context."
        )
    sampling = (
        dict(do_sample=True, temperature=temperature, top_k=top_k, top_p=top_p)
        if temperature > 0
        else dict(do_sample=False)
    )
    padded = list(range(len(tokenizer), model.config.vocab_size))  # rows the tokenizer cannot decode
    if padded and not model.generation_config.suppress_tokens:
        sampling["suppress_tokens"] = padded
    out = model.generate(
        **inputs,
        max_new_tokens=min(max_new_tokens, limit),
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        streamer=TextStreamer(tokenizer, skip_prompt=False) if stream else None,
        **sampling,
    )
    return tokenizer.decode(out[0], skip_special_tokens=True)
