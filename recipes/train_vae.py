"""A convolutional VAE on the digits: reconstructions, samples from the prior, latent interpolation.

python recipes/train_vae.py                   # pictures in runs/vae/*.png
"""

from dataclasses import dataclass, field

import torch

from llmkit.arguments import parse_args
from llmkit.classic.arguments import GenerativeArguments, epochs
from llmkit.classic.classify import load_judge, sample_score
from llmkit.classic.data import load_images
from llmkit.classic.generative import VAE
from llmkit.classic.launch import start
from llmkit.classic.loop import check_one_batch, fit
from llmkit.errors import UserError, run_cli
from llmkit.launch import one_run_per_output_dir
from llmkit.plots import save_grid


@dataclass
class VAEArguments(GenerativeArguments, recipe="train-vae", app_flag="vae", sizes=("latent",)):
    output_dir: str = "runs/vae"
    num_train_epochs: int = epochs(30)
    image_size: int = field(default=16, metadata={"help": "Images are resized to this (a multiple of 4)."})
    latent: int = field(default=16, metadata={"help": "Latent dimensions."})


TYPES = (VAEArguments,)


@one_run_per_output_dir
def main(argv: list[str] | None = None) -> dict:
    """Train the VAE the flags describe; returns metrics.json's content."""
    (args,) = parse_args(TYPES, argv)
    if args.image_size < 4 or args.image_size % 4:
        raise UserError(
            f"--image_size must be a multiple of 4 (two stride-2 convolutions), got {args.image_size}."
        )
    out = start(args)
    train, test, _ = load_images(args.dataset, args.image_size, seed=args.seed)
    channels = train.tensors[0].shape[1]
    kwargs = {"channels": channels, "size": args.image_size, "latent": args.latent}
    vae = VAE(**kwargs)
    optimizer = torch.optim.Adam(vae.parameters(), lr=args.learning_rate)
    check_one_batch(len(train), args)  # before the judge is trained, not after
    judge = load_judge(args.judge, out, args) if channels == 1 else None
    test_x = test.tensors[0]

    def step(mods, batch, update):
        loss, rec, kl = mods["vae"].loss(batch[0])
        update("vae", loss)
        return {"loss": loss.detach(), "reconstruction": rec.detach(), "kl": kl.detach()}

    def evaluate(mods):
        vae = mods["vae"]
        device = next(vae.parameters()).device
        metrics = {"loss": vae.loss(test_x.to(device))[0].item()}
        if judge is not None:
            metrics.update(
                sample_score(vae.sample(64, torch.Generator().manual_seed(args.seed)).cpu(), judge)
            )
        return metrics

    def on_epoch_end(epoch, mods, out):
        if epoch % 5 and epoch != args.num_train_epochs:
            return
        vae = mods["vae"]
        device = next(vae.parameters()).device
        originals = test_x[:32].to(device)
        recon = torch.sigmoid(vae.decode(vae.encode(originals)[0]))
        save_grid(torch.cat([originals, recon]), out / "reconstructions.png")  # top: inputs, bottom: outputs
        save_grid(
            vae.sample(64, torch.Generator().manual_seed(args.seed)), out / f"samples-epoch-{epoch}.png"
        )
        save_grid(
            torch.cat(
                [vae.interpolate(test_x[i].to(device), test_x[i + 1].to(device)) for i in range(0, 8, 2)]
            ),
            out / "interpolation.png",
        )

    return fit(
        args,
        {"vae": vae},
        {"vae": optimizer},
        step,
        train=train,
        config={"architecture": "vae", "kwargs": kwargs},
        evaluate=evaluate,
        on_epoch_end=on_epoch_end,
        headline=("confident_share", "class_coverage", "loss"),
    )


if __name__ == "__main__":
    run_cli(main)
