"""llmkit: pretrain, fine-tune, retrieve and share language models with the Hugging Face stack."""

import os

# OpenMP threads that spin while they wait make small CPU ops 10-100x slower when the cores are shared
# (measured: an MLP step on 2 busy cores took 31-121 ms spinning, 1-2 ms sleeping). It must be set before
# torch loads, so importing llmkit first sets it; a value the user exported wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
