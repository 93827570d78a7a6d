"""The recipes, one entry each: `llmkit NAME`, `python recipes/MODULE.py` and `accelerate launch recipes/MODULE.py`.

Every recipe module defines `TYPES` (its argument dataclasses: its one parser, which also reads
`--config FILE`) and `main(argv)`. The `llmkit` command, its `--help` and the tests read this table;
the wheel ships this folder as `llmkit.recipes`, so the commands work from an installed package too.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Recipe:
    """A recipe: its command name, its module in this folder, and one line for `llmkit --help`."""

    name: str
    module: str
    summary: str

    def load(self) -> ModuleType:
        """Import the recipe's module (only when it runs: most recipes import torch and transformers)."""
        return importlib.import_module(f"{__name__}.{self.module}")


# Each recipe's command name and its line in `llmkit --help`; the module is the name with underscores.
SUMMARIES = {
    "tokenize": "tokenize a corpus once into packed blocks on disk",
    "pretrain": "pretrain a GPT-2-style model from scratch",
    "finetune-bert": "fine-tune an encoder for classification or tagging",
    "finetune-qa": "fine-tune an encoder for extractive question answering (SQuAD)",
    "finetune-t5": "fine-tune T5 on text-to-text pairs",
    "finetune-gpt2": "continue training a causal LM on text or prompt/response pairs",
    "finetune-image": "fine-tune a pretrained image classifier (transfer learning)",
    "finetune-segmentation": "fine-tune a semantic segmentation model (SegFormer) on images and masks",
    "finetune-detection": "fine-tune an object detector (DETR, RT-DETR, YOLOS...) on COCO boxes",
    "train-mlp": "an MLP on the digits, in NumPy from scratch and in PyTorch",
    "train-cnn": "a CNN (LeNet or a small ResNet) on images",
    "train-rnn": "an RNN, LSTM or GRU language model on characters",
    "train-gan": "a DCGAN on the digits",
    "train-vae": "a convolutional VAE on the digits",
    "train-diffusion": "a DDPM (DDIM sampling too) on the digits",
    "train-dbn": "a deep belief network: RBMs pretrained with contrastive divergence",
    "train-word2vec": "word vectors with skip-gram or CBOW",
}
# The modules not named after their command.
MODULES = {"tokenize": "tokenize_corpus", "pretrain": "pretrain_gpt2"}

RECIPES: dict[str, Recipe] = {
    name: Recipe(name, MODULES.get(name, name.replace("-", "_")), summary)
    for name, summary in SUMMARIES.items()
}
