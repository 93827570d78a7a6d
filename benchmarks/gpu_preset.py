"""One step of the GPU check (benchmarks/gpu_check.py), in a process of its own: train a GPT-2 preset at its default
GPU micro-batch for a few steps on random blocks and write its peak memory, or the OOM, to OUT_DIR/preset-NAME.json.

    python benchmarks/gpu_preset.py OUT_DIR PRESET [--device cpu --tiny]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def probe_preset(out: Path, preset: str, device: str, tiny: bool, steps: int = 3) -> None:
    """Train `preset` at its default GPU micro-batch (eager, bf16 on CUDA) on random blocks; write the peak memory."""
    import resource

    import torch
    from datasets import Dataset
    from transformers import Trainer

    from llmkit.data import collate_blocks
    from llmkit.lm.loss import use_fast_loss
    from llmkit.lm.model import GPU_MICRO_BATCH, ModelArguments, build_gpt2, count_parameters
    from llmkit.lm.pretrain import PretrainingArguments
    from llmkit.lm.throughput import precision_of

    shape = dict(n_layer=1, n_head=2, n_embd=64, n_positions=64) if tiny else {}
    model_args = ModelArguments(preset=preset, **shape)
    vocab, micro = (512, 2) if tiny else (50257, GPU_MICRO_BATCH[preset])
    block = model_args.config_fields()["n_positions"]
    args = PretrainingArguments(
        output_dir=str(out / f"preset-{preset}-run"),
        max_steps=steps,
        per_device_train_batch_size=micro,
        save_strategy="no",
        eval_strategy="no",
        logging_steps=steps,
        report_to="none",
        disable_tqdm=True,
        torch_compile=False,  # compiling four presets would not fit the time; eager needs at least as much memory
        dataloader_num_workers=0,
        use_cpu=device == "cpu",
    )
    with torch.device(args.device):  # initialise on the GPU: a 1B model initialises slowly on the CPU
        model = build_gpt2(model_args, _Tokenizer(vocab))
    loss = use_fast_loss(model, args.loss_implementation, args.device)
    ids = torch.randint(0, vocab, (steps * micro, block)).tolist()
    result = dict(preset=preset, micro_batch=micro, block_size=block, precision=precision_of(args), loss=loss)
    result.update(parameters_m=round(count_parameters(model) / 1e6, 1), torch_compile=False)
    try:
        Trainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict({"input_ids": ids}),
            data_collator=collate_blocks,
        ).train()
        result["oom"] = False
    except torch.OutOfMemoryError as err:
        result.update(oom=True, error=str(err).splitlines()[0])
    if args.device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        result["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    else:
        result["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    (out / f"preset-{preset}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


class _Tokenizer:
    """All build_gpt2 asks of a tokenizer: its length and special ids."""

    def __init__(self, n: int):
        self.n, self.eos_token_id, self.pad_token_id = n, 0, 0

    def __len__(self) -> int:
        return self.n


def main(argv: list[str] | None = None) -> None:
    """The command line of one preset's probe."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("preset")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes: a dry run on any machine")
    args = parser.parse_args(argv)
    probe_preset(Path(args.out_dir).resolve(), args.preset, args.device, args.tiny)


if __name__ == "__main__":
    main()
