"""A DCGAN (optionally class-conditional) on the digits, with label smoothing, gradient clipping and sample grids.

    python recipes/train_gan.py                   # 16x16 digits; grids in runs/gan/samples-epoch-N.png
    python recipes/train_gan.py --conditional     # ask for a given digit
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from llmkit.arguments import parse_args
from llmkit.classic.classify import load_judge, sample_score
from llmkit.classic.data import load_images
from llmkit.classic.generative import Discriminator, Generator
from llmkit.classic.loop import ClassicArguments, fit, save_grid
from llmkit.errors import run_cli


@dataclass
class GANArguments(ClassicArguments):
    output_dir: str = "runs/gan"
    epochs: int = 40
    learning_rate: float = 2e-4
    image_size: int = field(default=16, metadata={"help": "16 or 32."})
    z_dim: int = field(default=64, metadata={"help": "Noise dimensions."})
    conditional: bool = field(default=False, metadata={"help": "Condition both networks on the class."})
    label_smoothing: float = field(default=0.1, metadata={"help": "Real targets become 1 - this (one-sided smoothing)."})
    judge: str | None = field(default="runs/cnn", metadata={"help": "A CNN folder that scores samples (trained on the fly if missing)."})


def main(argv=None) -> dict:
    args = parse_args((GANArguments,), argv)[0]
    train, _, n_classes = load_images(args.dataset, args.image_size)
    channels = train.tensors[0].shape[1]
    classes = n_classes if args.conditional else None
    g_kwargs = {"z_dim": args.z_dim, "channels": channels, "size": args.image_size, "n_classes": classes}
    d_kwargs = {"channels": channels, "size": args.image_size, "n_classes": classes}
    gen, disc = Generator(**g_kwargs), Discriminator(**d_kwargs)
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.learning_rate, betas=(0.5, 0.999))  # DCGAN's betas
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.learning_rate, betas=(0.5, 0.999))
    judge = load_judge(args.judge, args.image_size) if channels == 1 else None
    fixed = torch.Generator().manual_seed(args.seed)
    fixed_z = torch.randn(64, args.z_dim, generator=fixed)
    fixed_labels = torch.arange(64) % n_classes

    def step(accelerator, mods, opts, batch):
        real, labels = batch
        labels = labels if classes else None
        z = torch.randn(len(real), args.z_dim, device=real.device)
        fake = mods["generator"](z, labels)
        # Discriminator: real -> 1 - smoothing, fake -> 0.
        d_real, d_fake = mods["discriminator"](real, labels), mods["discriminator"](fake.detach(), labels)
        loss_d = F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, 1 - args.label_smoothing)) + \
            F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        accelerator.backward(loss_d)
        accelerator.clip_grad_norm_(mods["discriminator"].parameters(), 1.0)
        opts["discriminator"].step()
        opts["discriminator"].zero_grad(set_to_none=True)
        # Generator: make the discriminator say 1 (the non-saturating loss).
        d_out = mods["discriminator"](fake, labels)
        loss_g = F.binary_cross_entropy_with_logits(d_out, torch.ones_like(d_out))
        accelerator.backward(loss_g)
        accelerator.clip_grad_norm_(mods["generator"].parameters(), 1.0)
        opts["generator"].step()
        opts["generator"].zero_grad(set_to_none=True)
        opts["discriminator"].zero_grad(set_to_none=True)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    def samples(mods, n=64):
        g = mods["generator"]
        device = next(g.parameters()).device
        return g(fixed_z[:n].to(device), fixed_labels[:n].to(device) if classes else None).cpu()

    def evaluate(mods):
        return sample_score(samples(mods), judge) if judge is not None else {}

    def on_epoch_end(epoch, mods, out):
        if epoch % 5 == 0 or epoch == args.epochs:
            save_grid(samples(mods), out / f"samples-epoch-{epoch}.png")

    config = {"architecture": "dcgan", "generator": g_kwargs, "discriminator": d_kwargs}
    return fit(args, {"generator": gen, "discriminator": disc}, {"generator": opt_g, "discriminator": opt_d},
               step, train, config, evaluate, on_epoch_end)


if __name__ == "__main__":
    run_cli(main)
