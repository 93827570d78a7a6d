"""DDPM on the digits: a small U-Net learns to remove noise; DDPM or DDIM sampling; a picture of the denoising.

python recipes/train_diffusion.py                         # cosine schedule, 200 steps; pictures in runs/ddpm
python recipes/train_diffusion.py --beta_schedule linear --sampler ddpm
"""

from dataclasses import dataclass, field

import torch

from llmkit.arguments import parse_args
from llmkit.classic.arguments import GenerativeArguments, epochs
from llmkit.classic.classify import load_judge, sample_score
from llmkit.classic.data import load_images
from llmkit.classic.diffusion import UNet, diffusion_loss, sample
from llmkit.classic.launch import start
from llmkit.classic.loop import check_one_batch, fit
from llmkit.classic.schedulers import SCHEDULERS
from llmkit.errors import UserError, run_cli
from llmkit.launch import one_run_per_output_dir
from llmkit.plots import save_grid


@dataclass
class DiffusionArguments(
    GenerativeArguments, recipe="train-diffusion", app_flag="diffusion", sizes=("num_inference_steps",)
):
    output_dir: str = "runs/ddpm"
    num_train_epochs: int = epochs(40)
    learning_rate: float = 2e-3
    image_size: int = field(default=16, metadata={"help": "Images are resized to this (even)."})
    width: int = field(default=32, metadata={"help": "U-Net base width (a multiple of 8)."})
    num_train_timesteps: int = field(
        default=200, metadata={"help": "Diffusion steps T.", "aliases": ["--timesteps"]}
    )
    beta_schedule: str = field(
        default="cosine",
        metadata={"help": "linear or cosine.", "choices": ["linear", "cosine"], "aliases": ["--schedule"]},
    )
    sampler: str = field(
        default="ddim",
        metadata={"help": "ddpm (all T steps) or ddim (--num_inference_steps).", "choices": list(SCHEDULERS)},
    )
    num_inference_steps: int | None = field(
        default=None,
        metadata={
            "help": "Sampling steps (DDIM default 50, DDPM default T).",
            "aliases": ["--sampling_steps"],
        },
    )


TYPES = (DiffusionArguments,)


@one_run_per_output_dir
def main(argv: list[str] | None = None) -> dict:
    """Train the diffusion model the flags describe; returns metrics.json's content."""
    (args,) = parse_args(TYPES, argv)
    if args.image_size < 2 or args.image_size % 2 or args.width < 8 or args.width % 8:
        raise UserError(
            f"--image_size must be even and --width a multiple of 8, got {args.image_size} and {args.width}."
        )
    if args.num_train_timesteps < 2:  # the scheduler's own words named no flag
        raise UserError(f"--num_train_timesteps must be at least 2, got {args.num_train_timesteps}.")
    if (args.num_inference_steps or 0) > args.num_train_timesteps:
        raise UserError(
            f"--num_inference_steps {args.num_inference_steps} is more than the model's "
            f"--num_train_timesteps {args.num_train_timesteps}; sample with at most that many steps."
        )
    out = start(args)
    scheduler = SCHEDULERS[args.sampler](args.num_train_timesteps, args.beta_schedule)
    scheduler.set_timesteps(args.num_inference_steps)  # refuses a bad step count before training
    train, _, _ = load_images(args.dataset, args.image_size, seed=args.seed)
    channels = train.tensors[0].shape[1]
    kwargs = {"channels": channels, "width": args.width}
    unet = UNet(**kwargs)
    optimizer = torch.optim.Adam(unet.parameters(), lr=args.learning_rate)
    check_one_batch(len(train), args)  # before the judge is trained, not after
    judge = load_judge(args.judge, out, args) if channels == 1 else None

    def step(mods, batch, update):
        loss = diffusion_loss(mods["unet"], scheduler, batch[0])
        update("unet", loss)
        return {"loss": loss.detach()}

    def generate(mods, keep=0):
        return sample(
            mods["unet"],
            scheduler,
            64,
            size=args.image_size,
            channels=channels,
            steps=args.num_inference_steps,
            generator=torch.Generator().manual_seed(args.seed),
            keep=keep,
        )

    def evaluate(mods):
        return sample_score(generate(mods)[0], judge) if judge is not None else {}

    def on_epoch_end(epoch, mods, out):
        scheduler.save_config(out)  # beside unet.safetensors: how to sample from it
        if epoch % 10 and epoch != args.num_train_epochs:
            return
        images, steps = generate(mods, keep=8)
        save_grid(images, out / f"samples-epoch-{epoch}.png")
        # each row: one moment, noise to digit
        save_grid(torch.cat([s[:8] for s in steps]), out / "denoising.png", nrow=8)

    config = {"architecture": "ddpm-unet", "kwargs": kwargs, "image_size": args.image_size}
    # the noise the model learns to remove: a checkpoint trained under another schedule is refused
    config |= {"num_train_timesteps": args.num_train_timesteps, "beta_schedule": args.beta_schedule}
    return fit(
        args,
        {"unet": unet},
        {"unet": optimizer},
        step,
        train=train,
        config=config,
        evaluate=evaluate,
        on_epoch_end=on_epoch_end,
        headline=("confident_share", "class_coverage", "loss"),
    )


if __name__ == "__main__":
    run_cli(main)
