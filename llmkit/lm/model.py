"""GPT-2 model presets, from a CPU-sized `tiny` to a 1B-parameter model, and the model builder."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerBase

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


@dataclass
class ModelArguments:
    """The model's size and tokenizer."""

    preset: str = field(default="tiny", metadata={"help": f"Model size: one of {', '.join(PRESETS)}."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "A tokenizer on the Hub or a local folder (default: train a byte-level BPE on the corpus)."})
    vocab_size: int | None = field(default=None, metadata={"help": "Vocabulary size of the BPE trained on the corpus (default: 8192 for tiny, else 50257)."})
    n_layer: int | None = field(default=None, metadata={"help": "Override the preset's number of layers."})
    n_head: int | None = field(default=None, metadata={"help": "Override the preset's number of attention heads."})
    n_embd: int | None = field(default=None, metadata={"help": "Override the preset's width."})
    n_positions: int | None = field(default=None, metadata={"help": "Override the preset's context length."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout on embeddings, attention and residuals (0 suits pretraining on much data)."})
    sample_prompts: list[str] = field(
        default_factory=lambda: ["The", "In Python,", "This function returns", "Return a"],
        metadata={"help": "Prompts for samples.txt, written when training ends."},
    )
    sample_max_new_tokens: int = field(default=60, metadata={"help": "Tokens generated per sample."})

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise UserError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)} (and override fields with --n_layer, --n_embd, ...).")

    def config_fields(self) -> dict[str, int]:
        """The preset's shape with the per-field overrides applied."""
        shape = dict(PRESETS[self.preset])
        shape.update({k: getattr(self, k) for k in shape if getattr(self, k) is not None})
        if shape["n_embd"] % shape["n_head"]:
            raise UserError(f"n_embd ({shape['n_embd']}) must be divisible by n_head ({shape['n_head']}).")
        return shape

    @property
    def bpe_vocab_size(self) -> int:
        """Vocabulary size for a tokenizer trained by llmkit."""
        return self.vocab_size or DEFAULT_VOCAB.get(self.preset, 50257)


def build_gpt2(args: ModelArguments, tokenizer: PreTrainedTokenizerBase) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 sized by the preset and overrides, matching the tokenizer."""
    vocab = len(tokenizer)
    if args.vocab_size is not None and args.tokenizer_name and args.vocab_size < vocab:
        raise UserError(
            f"--vocab_size {args.vocab_size} is smaller than tokenizer {args.tokenizer_name!r}'s {vocab} tokens; "
            "drop --vocab_size (the model then matches the tokenizer) or use a smaller tokenizer."
        )
    config = GPT2Config(
        vocab_size=vocab,
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
    return GPT2LMHeadModel._from_config(config, attn_implementation="sdpa")


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
