"""GPT-2 model presets, from a CPU-sized `tiny` to a 1B-parameter model, and the model builder."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from llmkit.data.tokenizer import check_vocab_size_flag
from llmkit.errors import UserError

# n_layer, n_head, n_embd, n_positions. `tiny` trains in minutes on a laptop CPU; the gpt2* rows
# are OpenAI's GPT-2 sizes; gpt2-1b is 32 layers x 1600 wide with a 512-token context.
PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(n_layer=4, n_head=4, n_embd=256, n_positions=128),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024),
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024, n_positions=1024),
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280, n_positions=1024),
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600, n_positions=1024),
    "gpt2-1b": dict(n_layer=32, n_head=32, n_embd=1600, n_positions=512),
}
DEFAULT_VOCAB = {"tiny": 8192}  # a BPE trained on the corpus; GPT-2 sizes default to GPT-2's 50257
# Micro-batch (blocks per device per step) used on a GPU when --per_device_train_batch_size is not
# given: sized for one 80 GB GPU in bf16 at the preset's full context with the chunked loss.
# On CPU the default stays 16.
GPU_MICRO_BATCH = {"tiny": 64, "gpt2": 32, "gpt2-medium": 16, "gpt2-large": 8, "gpt2-xl": 4, "gpt2-1b": 8}


@dataclass
class ModelArguments:
    """The model's size and tokenizer."""

    preset: str = field(default="tiny", metadata={"help": f"Model size: one of {', '.join(PRESETS)}."})
    tokenizer_name: str | None = field(
        default=None,
        metadata={
            "help": "A tokenizer on the Hub or a local folder (default: train a byte-level BPE on the corpus)."
        },
    )
    vocab_size: int | None = field(
        default=None,
        metadata={
            "help": "Vocabulary size of the BPE trained on the corpus (default: 8192 for tiny, else 50257)."
        },
    )
    n_layer: int | None = field(default=None, metadata={"help": "Override the preset's number of layers."})
    n_head: int | None = field(
        default=None, metadata={"help": "Override the preset's number of attention heads."}
    )
    n_embd: int | None = field(default=None, metadata={"help": "Override the preset's width."})
    n_positions: int | None = field(default=None, metadata={"help": "Override the preset's context length."})
    pad_vocab_multiple: int = field(
        default=64,
        metadata={
            "help": "Round the model's vocabulary up to a multiple of this (fast matmul kernels; the extra ids are never generated); 1 turns it off."
        },
    )
    dropout: float = field(
        default=0.0,
        metadata={
            "help": "Dropout on embeddings, attention and residuals (0 suits pretraining on much data)."
        },
    )
    sample_prompts: list[str] | None = field(
        default=None,
        metadata={
            "help": "Prompts for samples.txt, written when training ends (default: the first words of four validation blocks)."
        },
    )
    sample_max_new_tokens: int = field(default=60, metadata={"help": "Tokens generated per sample."})

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise UserError(
                f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)} (and override fields with --n_layer, --n_embd, ...)."
            )
        if self.pad_vocab_multiple < 1:
            raise UserError(
                f"--pad_vocab_multiple must be 1 (no padding) or more, got {self.pad_vocab_multiple}."
            )
        if not 0 <= self.dropout < 1:  # nan compares false: refused too
            raise UserError(f"--dropout is a probability: 0 or more and below 1, got {self.dropout}.")
        if self.sample_max_new_tokens < 1:  # checked now, not after the training it ends
            raise UserError(f"--sample_max_new_tokens must be at least 1, got {self.sample_max_new_tokens}.")
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "n_positions"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"--{name} must be at least 1, got {getattr(self, name)}.")
        if self.n_positions == 1:  # a 1-token block has no next token: a NaN loss, then "training diverged"
            raise UserError(
                "--n_positions must be at least 2: a token needs a next one to learn from, got 1."
            )
        self.config_fields()  # a shape that cannot be built is refused before the corpus is read

    def config_fields(self) -> dict[str, int]:
        """The preset's shape with the per-field overrides applied."""
        shape = dict(PRESETS[self.preset])
        shape.update({k: getattr(self, k) for k in shape if getattr(self, k) is not None})
        if shape["n_embd"] % shape["n_head"]:
            raise UserError(f"n_embd ({shape['n_embd']}) must be divisible by n_head ({shape['n_head']}).")
        return shape

    def preset_label(self) -> str:
        """The preset's name, or `custom (<preset> with n_layer=2, ...)` when overrides changed its shape."""
        changed = {k: v for k, v in self.config_fields().items() if v != PRESETS[self.preset][k]}
        if not changed:
            return self.preset
        return f"custom ({self.preset} with {', '.join(f'{k}={v}' for k, v in changed.items())})"

    @property
    def bpe_vocab_size(self) -> int:
        """Vocabulary size for a tokenizer trained by llmkit."""
        return self.vocab_size or DEFAULT_VOCAB.get(self.preset, 50257)


def build_gpt2(args: ModelArguments, tokenizer: PreTrainedTokenizerBase) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 sized by the preset and overrides, matching the tokenizer."""
    vocab = len(tokenizer)
    follows = "the model's vocabulary follows the tokenizer"
    check_vocab_size_flag(args.vocab_size, args.tokenizer_name, vocab, follows)
    config = GPT2Config(
        vocab_size=padded_vocab_size(vocab, args.pad_vocab_multiple),
        **args.config_fields(),
        resid_pdrop=args.dropout,
        embd_pdrop=args.dropout,
        attn_pdrop=args.dropout,
        # GPT-2's tanh-approximated GELU, computed by one fused PyTorch kernel instead of
        # "gelu_new"'s chain of elementwise ops (same function, ~25% faster steps on CPU).
        activation_function="gelu_pytorch_tanh",
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")  # a GPT2LMHeadModel
    model.loss_type = "ForCausalLM"  # GPT-2's class name maps to no loss type, which transformers warns about
    suppress_padded_ids(model, tokenizer)
    return model


def padded_vocab_size(vocab: int, multiple: int) -> int:
    """`vocab` rounded up to a multiple of `multiple`."""
    return -(-vocab // multiple) * multiple


def suppress_padded_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Keep generate() (and so pipelines and the saved generation_config.json) from emitting ids past the tokenizer."""
    padded = list(range(len(tokenizer), model.config.vocab_size))
    if padded or model.generation_config.suppress_tokens:
        model.generation_config.suppress_tokens = padded or None
    return padded


def pad_vocabulary(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, multiple: int = 64
) -> PreTrainedModel:
    """Resize the embeddings to fit the tokenizer, rounded up to `multiple`; padded ids are never generated."""
    if multiple < 1:
        raise UserError(f"the vocabulary padding multiple must be 1 or more, got {multiple}.")
    vocab = model.get_input_embeddings().weight.shape[0]
    if vocab < len(tokenizer) or vocab % multiple:
        # new rows get the mean embedding (transformers' default), so they start as plausible tokens
        model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=multiple)
    if getattr(model, "loss_type", None) is None:
        model.loss_type = "ForCausalLM"
    suppress_padded_ids(model, tokenizer)
    return model


def check_model_fits(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerBase, block_size: int) -> None:
    """Fail early when the tokenizer or block size do not fit the model."""
    if len(tokenizer) > model.config.vocab_size:
        raise UserError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary is {model.config.vocab_size}; "
            "use the tokenizer the model was trained with."
        )
    if block_size > model.config.n_positions:
        raise UserError(
            f"--block_size {block_size} is larger than the model's context ({model.config.n_positions} positions); "
            f"use --block_size {model.config.n_positions} or less, or raise --n_positions."
        )


def count_parameters(model: GPT2LMHeadModel) -> int:
    """Number of distinct parameters (the tied LM head counts once)."""
    return sum(p.numel() for p in model.parameters())


def flops_per_token(config: GPT2Config, seq_len: int) -> float:
    """Training FLOPs per token: 6 x non-embedding parameters plus attention (PaLM appendix B)."""
    n, d, L = config.vocab_size, config.n_embd, config.n_layer
    matmul_params = 12 * L * d * d + n * d  # the blocks plus the LM head (tied to the embedding)
    return 6 * matmul_params + 12 * L * d * seq_len
