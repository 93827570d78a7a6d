"""A language-model loss that never holds the whole batch's logits in fp32.

`GPT2LMHeadModel(labels=...)` computes batch x seq x vocab logits and upcasts all of them to fp32
for the cross-entropy: at GPT-2's size that is 6 GB per micro-batch of 32 and a slow pass over it.
Here the LM head and the cross-entropy run together, a chunk of tokens at a time:

- `chunked`: plain PyTorch, any device. The forward pass computes each chunk's logits, its loss
  and, when gradients are wanted, its gradients right away (the way fused kernels do), so only one
  chunk of logits exists at a time and the backward pass is a multiplication.
- `liger`: liger-kernel's fused linear + cross-entropy Triton kernel (`pip install llmkit[gpu]`),
  used by `auto` when it is installed and the model is on CUDA.

`use_fast_loss(model)` switches a model to it; the weights, config and saved folder stay those of a
plain `GPT2LMHeadModel`, and calls without labels (generation) take the usual path. Under FSDP or
DeepSpeed ZeRO-3, which gather a weight only inside its own module, transformers' loss is kept.
"""

from __future__ import annotations

import importlib.util
import os
import types

import torch
import torch.nn.functional as F
from transformers.modeling_outputs import CausalLMOutputWithCrossAttentions

from llmkit.errors import UserError

LOSS_IMPLEMENTATIONS = ("auto", "chunked", "liger", "hf")
CHUNK_ELEMENTS = 2**25  # logits per chunk: 32M fp32 values (128 MB), e.g. 667 tokens of a 50k vocabulary


def liger_available() -> bool:
    """True when liger-kernel (and its Triton) can be imported."""
    return (
        importlib.util.find_spec("liger_kernel") is not None
        and importlib.util.find_spec("triton") is not None
    )


def resolve_loss(impl: str, device: torch.device | str) -> str:
    """The implementation `impl` means on `device`: `auto` is liger on CUDA when installed, else chunked."""
    if impl not in LOSS_IMPLEMENTATIONS:
        raise UserError(
            f"--loss_implementation must be one of {', '.join(LOSS_IMPLEMENTATIONS)}, got {impl!r}."
        )
    on_cuda = torch.device(device).type == "cuda"
    if impl == "liger" and not (on_cuda and liger_available()):
        raise UserError(
            "--loss_implementation liger needs a CUDA GPU and liger-kernel: `pip install 'llmkit[gpu]'`, or use chunked."
        )
    if impl == "auto":
        return "liger" if on_cuda and liger_available() else "chunked"
    return impl


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """sum over tokens of CE(hidden @ weight.T, labels), computed chunk by chunk with its gradients."""

    @staticmethod
    # Function.apply passes its arguments on positionally: torch fixes this signature, not llmkit.
    def forward(
        ctx, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, chunk: int
    ) -> torch.Tensor:
        want_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if want_grad else None
        grad_weight = (
            torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if want_grad else None
        )
        for start in range(0, hidden.shape[0], chunk):
            h, y = hidden[start : start + chunk], labels[start : start + chunk]
            logits = (h @ weight.T).float()  # in the autocast dtype, upcast one chunk at a time
            total = total + F.cross_entropy(logits, y, ignore_index=-100, reduction="sum")
            if want_grad:
                # d(sum CE)/d logits = softmax - one_hot, zero on ignored tokens
                grad = logits.softmax(-1)
                keep = y != -100
                grad.scatter_add_(1, y.clamp(min=0).unsqueeze(1), -keep.unsqueeze(1).to(grad.dtype))
                grad = (grad * keep.unsqueeze(1)).to(h.dtype)
                grad_hidden[start : start + chunk] = grad @ weight.to(h.dtype)
                grad_weight += (grad.T @ h).float()
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        return (
            grad_hidden * grad_output.to(grad_hidden.dtype),
            (grad_weight * grad_output).to(ctx.weight_dtype),
            None,
            None,
        )


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_items_in_batch: int | torch.Tensor | None = None,
    impl: str = "chunked",
) -> torch.Tensor:
    """Next-token loss of `hidden @ weight.T` against `labels` (shifted here, -100 ignored), like GPT2LMHeadModel's."""
    d = hidden.shape[-1]
    hidden = hidden[:, :-1].reshape(-1, d)
    labels = labels[:, 1:].reshape(-1).to(hidden.device)
    if impl == "liger":
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        total = LigerFusedLinearCrossEntropyLoss(reduction="sum")(weight, hidden, labels)
        total = total[0] if isinstance(total, tuple) else total
    else:
        chunk = max(1, CHUNK_ELEMENTS // weight.shape[0])
        total = _ChunkedLinearCrossEntropy.apply(hidden, weight, labels, chunk)
    # the mean over counted tokens; over the whole accumulated batch when the Trainer gives its size
    count = num_items_in_batch if num_items_in_batch is not None else (labels != -100).sum()
    if torch.is_tensor(count):
        count = count.to(total.device)
    return total / count


def _fast_loss_forward(self, input_ids=None, labels=None, num_items_in_batch=None, **kwargs):
    """GPT2LMHeadModel.forward, except that a call with labels returns the loss without logits."""
    if labels is None or kwargs.get("past_key_values") is not None:
        return type(self).forward(self, input_ids=input_ids, labels=labels, **kwargs)
    kwargs.pop("use_cache", None)
    kwargs.pop("logits_to_keep", None)
    hidden = self.transformer(input_ids=input_ids, use_cache=False, **kwargs).last_hidden_state
    loss = linear_cross_entropy(
        hidden, self.lm_head.weight, labels, num_items_in_batch=num_items_in_batch, impl=self._llmkit_loss
    )
    return CausalLMOutputWithCrossAttentions(loss=loss, logits=None)


def use_fast_loss(
    model: torch.nn.Module, impl: str = "auto", device: torch.device | str | None = None
) -> str:
    """Make `model(input_ids, labels=...)` use the chunked/fused loss on `device`; returns the implementation chosen."""
    impl = resolve_loss(impl, device or next(model.parameters()).device)
    if impl != "hf" and _parameters_sharded():
        # FSDP / ZeRO-3 gather a weight only when its own module runs; this loss reads lm_head.weight directly
        impl = "hf"
    if impl != "hf" and not (hasattr(model, "transformer") and hasattr(model, "lm_head")):
        impl = (
            "hf"  # not GPT-2's layout (another model, or a transformers that renamed it): the library's loss
        )
    if impl != "hf":
        model._llmkit_loss = impl
        # transformers has no public hook for a loss that skips the logits, so this one place wraps GPT-2's
        # forward on the instance (the class, config and saved weights stay GPT2LMHeadModel's);
        # tests/lm/test_speed.py fails if a transformers release changes what it relies on.
        model.forward = types.MethodType(_fast_loss_forward, model)
    return impl


def _parameters_sharded() -> bool:
    from transformers.integrations import is_deepspeed_zero3_enabled

    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")
    return fsdp or is_deepspeed_zero3_enabled() or os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3"
