"""DDPM on the digits: a small UNet learns to remove noise; DDPM and DDIM sampling; a picture of the denoising.

    python recipes/train_diffusion.py                         # cosine schedule, 200 steps; pictures in runs/ddpm
    python recipes/train_diffusion.py --schedule linear --sampler ddim --sampling_steps 50
"""

from dataclasses import dataclass, field

import torch

from llmkit.arguments import parse_args
from llmkit.classic.classify import load_judge, sample_score
from llmkit.classic.data import load_images
from llmkit.classic.diffusion import NoiseSchedule, UNet, diffusion_loss, sample
from llmkit.classic.loop import ClassicArguments, fit, save_grid
from llmkit.errors import UserError, run_cli


@dataclass
class DiffusionArguments(ClassicArguments):
    output_dir: str = "runs/ddpm"
    epochs: int = 40
    learning_rate: float = 2e-3
    image_size: int = field(default=16, metadata={"help": "Images are resized to this (even)."})
    width: int = field(default=32, metadata={"help": "UNet base width (a multiple of 8)."})
    timesteps: int = field(default=200, metadata={"help": "Diffusion steps T."})
    schedule: str = field(default="cosine", metadata={"help": "linear or cosine."})
    sampler: str = field(default="ddim", metadata={"help": "ddpm (T steps) or ddim (--sampling_steps)."})
    sampling_steps: int = field(default=50, metadata={"help": "DDIM steps."})
    judge: str | None = field(default="runs/cnn", metadata={"help": "A CNN folder that scores samples (trained on the fly if missing)."})


def main(argv=None) -> dict:
    args = parse_args((DiffusionArguments,), argv)[0]
    if args.schedule not in ("linear", "cosine") or args.sampler not in ("ddpm", "ddim"):
        raise UserError("--schedule must be linear or cosine and --sampler ddpm or ddim.")
    train, _, _ = load_images(args.dataset, args.image_size)
    channels = train.tensors[0].shape[1]
    schedule = NoiseSchedule(args.timesteps, args.schedule)
    kwargs = {"channels": channels, "width": args.width}
    unet = UNet(**kwargs)
    optimizer = torch.optim.Adam(unet.parameters(), lr=args.learning_rate)
    judge = load_judge(args.judge, args.image_size) if channels == 1 else None

    def step(accelerator, mods, opts, batch):
        loss = diffusion_loss(mods["unet"], schedule, batch[0])
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(mods["unet"].parameters(), 1.0)
        opts["unet"].step()
        opts["unet"].zero_grad(set_to_none=True)
        return {"loss": loss.item()}

    def generate(mods, keep=0):
        return sample(mods["unet"], schedule, 64, args.image_size, channels, args.sampler, args.sampling_steps,
                      torch.Generator().manual_seed(args.seed), keep)

    def evaluate(mods):
        return sample_score(generate(mods)[0], judge) if judge is not None and args.epochs else {}

    def on_epoch_end(epoch, mods, out):
        if epoch % 10 and epoch != args.epochs:
            return
        images, steps = generate(mods, keep=8)
        save_grid(images, out / f"samples-epoch-{epoch}.png")
        save_grid(torch.cat([s[:8] for s in steps]), out / "denoising.png", nrow=8)  # each row: one moment, noise to digit

    config = {"architecture": "ddpm-unet", "kwargs": kwargs, "schedule": args.schedule, "timesteps": args.timesteps}
    return fit(args, {"unet": unet}, {"unet": optimizer}, step, train, config, evaluate, on_epoch_end)


if __name__ == "__main__":
    run_cli(main)
