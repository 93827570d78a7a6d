"""llmkit: pretrain, fine-tune, retrieve and share language models with the Hugging Face stack."""

__version__ = "0.1.0"
