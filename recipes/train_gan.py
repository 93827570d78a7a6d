"""A DCGAN (optionally class-conditional) on the digits, with label smoothing, gradient clipping and sample grids.

python recipes/train_gan.py                   # 16x16 digits; grids in runs/gan/samples-epoch-N.png
python recipes/train_gan.py --conditional     # ask for a given digit
"""

from dataclasses import dataclass, field

import torch

from llmkit.arguments import parse_args
from llmkit.classic.arguments import GenerativeArguments, epochs
from llmkit.classic.classify import load_judge, sample_score
from llmkit.classic.data import load_images
from llmkit.classic.generative import Discriminator, Generator, gan_step
from llmkit.classic.launch import start
from llmkit.classic.loop import check_one_batch, fit
from llmkit.errors import UserError, run_cli
from llmkit.launch import one_run_per_output_dir
from llmkit.plots import save_grid


@dataclass
class GANArguments(GenerativeArguments, recipe="train-gan", app_flag="gan", sizes=("z_dim",)):
    output_dir: str = "runs/gan"
    num_train_epochs: int = epochs(40)
    learning_rate: float = 2e-4
    image_size: int = field(default=16, metadata={"help": "16 or 32.", "choices": [16, 32]})
    z_dim: int = field(default=64, metadata={"help": "Noise dimensions."})
    conditional: bool = field(default=False, metadata={"help": "Condition both networks on the class."})
    label_smoothing: float = field(
        default=0.1, metadata={"help": "Real targets become 1 - this (one-sided smoothing)."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.label_smoothing < 1:  # 2 made the real target -1: it trained to exit 0 on nonsense
            raise UserError(f"--label_smoothing must be 0 or more and below 1, got {self.label_smoothing}.")


TYPES = (GANArguments,)


@one_run_per_output_dir
def main(argv: list[str] | None = None) -> dict:
    """Train the GAN the flags describe; returns metrics.json's content."""
    (args,) = parse_args(TYPES, argv)
    out = start(args)
    train, _, n_classes = load_images(args.dataset, args.image_size, seed=args.seed)
    channels = train.tensors[0].shape[1]
    classes = n_classes if args.conditional else None
    g_kwargs = {"z_dim": args.z_dim, "channels": channels, "size": args.image_size, "n_classes": classes}
    d_kwargs = {"channels": channels, "size": args.image_size, "n_classes": classes}
    gen, disc = Generator(**g_kwargs), Discriminator(**d_kwargs)
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.learning_rate, betas=(0.5, 0.999))  # DCGAN's betas
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.learning_rate, betas=(0.5, 0.999))
    check_one_batch(len(train), args)  # before the judge is trained, not after
    judge = load_judge(args.judge, out, args) if channels == 1 else None
    fixed_z = torch.randn(64, args.z_dim, generator=torch.Generator().manual_seed(args.seed))
    fixed_labels = torch.arange(64) % n_classes

    def samples(mods):
        g = mods["generator"]
        device = next(g.parameters()).device
        return g(fixed_z.to(device), fixed_labels.to(device) if classes else None).cpu()

    def evaluate(mods):
        return sample_score(samples(mods), judge) if judge is not None else {}

    def on_epoch_end(epoch, mods, out):
        if epoch % 5 == 0 or epoch == args.num_train_epochs:
            save_grid(samples(mods), out / f"samples-epoch-{epoch}.png")

    config = {"architecture": "dcgan", "generator": g_kwargs, "discriminator": d_kwargs}
    return fit(
        args,
        {"generator": gen, "discriminator": disc},
        {"generator": opt_g, "discriminator": opt_d},
        gan_step(args.z_dim, args.label_smoothing, args.conditional),
        train=train,
        config=config,
        evaluate=evaluate,
        on_epoch_end=on_epoch_end,
        headline=("confident_share", "class_coverage"),
    )


if __name__ == "__main__":
    run_cli(main)
