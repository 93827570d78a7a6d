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


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("tokenize", "tokenize_corpus", "tokenize a corpus once into packed blocks on disk"),
        Recipe("pretrain", "pretrain_gpt2", "pretrain a GPT-2-style model from scratch"),
        Recipe("finetune-bert", "finetune_bert", "fine-tune an encoder for classification or tagging"),
        Recipe(
            "finetune-qa", "finetune_qa", "fine-tune an encoder for extractive question answering (SQuAD)"
        ),
        Recipe("finetune-t5", "finetune_t5", "fine-tune T5 on text-to-text pairs"),
        Recipe(
            "finetune-gpt2", "finetune_gpt2", "continue training a causal LM on text or prompt/response pairs"
        ),
        Recipe(
            "finetune-image",
            "finetune_image",
            "fine-tune a pretrained image classifier (transfer learning)",
        ),
        Recipe(
            "finetune-segmentation",
            "finetune_segmentation",
            "fine-tune a semantic segmentation model (SegFormer) on images and masks",
        ),
        Recipe(
            "finetune-detection",
            "finetune_detection",
            "fine-tune an object detector (DETR, RT-DETR, YOLOS...) on COCO boxes",
        ),
        Recipe("train-mlp", "train_mlp", "an MLP on the digits, in NumPy from scratch and in PyTorch"),
        Recipe("train-cnn", "train_cnn", "a CNN (LeNet or a small ResNet) on images"),
        Recipe("train-rnn", "train_rnn", "an RNN, LSTM or GRU language model on characters"),
        Recipe("train-gan", "train_gan", "a DCGAN on the digits"),
        Recipe("train-vae", "train_vae", "a convolutional VAE on the digits"),
        Recipe("train-diffusion", "train_diffusion", "a DDPM (DDIM sampling too) on the digits"),
        Recipe(
            "train-dbn", "train_dbn", "a deep belief network: RBMs pretrained with contrastive divergence"
        ),
        Recipe("train-word2vec", "train_word2vec", "word vectors with skip-gram or CBOW"),
    )
}
