"""Look inside generation: each new token with its probability and top alternatives, and attention maps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llmkit.lm.generate import Sampling, check_prompt
from llmkit.lm.model import suppress_padded_ids


@dataclass
class Step:
    """One generated token, its probability under the model, and the most likely alternatives."""

    token: str
    probability: float
    alternatives: list[tuple[str, float]]
    # a character of several bytes can span tokens, each decoding alone to U+FFFD: decode the ids together
    token_id: int = -1


@torch.inference_mode()
def generate_steps(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    sampling: Sampling | None = None,
    *,
    n_alternatives: int = 5,
) -> Iterator[Step]:
    """Sample token by token (with the KV cache) as `generate_text` would, yielding each step as it is chosen."""
    check_prompt(prompt)
    sampling = sampling or Sampling(max_new_tokens=40)
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"].to(model.device)
    warpers = sampling.warpers()
    padded = suppress_padded_ids(model, tokenizer)  # the ids `generate` never samples: the same ones here
    past, step_ids = None, ids
    for _ in range(sampling.room(model, ids.shape[1])):
        out = model(input_ids=step_ids, past_key_values=past, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1, :].float()
        logits[:, padded] = float("-inf")
        probs = logits.softmax(-1)[0]  # the model's own distribution, before sampling settings
        if sampling.temperature > 0:
            choice = torch.multinomial(warpers(ids, logits).softmax(-1), 1)
        else:
            choice = logits.argmax(-1, keepdim=True)
        top = probs.topk(n_alternatives)
        token_id = int(choice[0, 0])
        yield Step(
            tokenizer.decode([token_id]),
            float(probs[token_id]),
            [(tokenizer.decode([int(i)]), float(p)) for p, i in zip(top.values, top.indices)],
            token_id,
        )
        if token_id == tokenizer.eos_token_id:
            break
        ids = torch.cat([ids, choice], dim=1)
        step_ids = choice


@torch.inference_mode()
def attention_map(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, text: str, *, layer: int, head: int
) -> tuple[list[str], torch.Tensor]:
    """(tokens, seq x seq attention weights) of one layer and head for `text`."""
    enc = tokenizer(
        text, return_tensors="pt", truncation=True, max_length=model.config.max_position_embeddings
    ).to(model.device)
    current = model.config._attn_implementation
    if current != "eager":  # fused kernels (SDPA, flash) never materialise the weights
        model.set_attn_implementation("eager")
    try:
        attentions = model(**enc, output_attentions=True).attentions
    finally:
        if current != "eager":
            model.set_attn_implementation(current)
    layer = max(0, min(layer, len(attentions) - 1))
    head = max(0, min(head, attentions[layer].shape[1] - 1))
    tokens = [tokenizer.decode([i]) for i in enc["input_ids"][0]]
    return tokens, attentions[layer][0, head].float().cpu()
