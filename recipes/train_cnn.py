"""A CNN on images (LeNet or a small ResNet), with augmentation and transfer learning from a checkpoint.

python recipes/train_cnn.py                                    # LeNet on the digits, at their own 8x8
python recipes/train_cnn.py --arch resnet --image_size 16
python recipes/train_cnn.py --init_from runs/cnn --freeze_features --dataset my.npz   # transfer learning
"""

from dataclasses import dataclass, field

import torch
from torch import nn

from llmkit.arguments import parse_args
from llmkit.classic.arguments import ImageArguments, epochs
from llmkit.classic.classify import train_classifier
from llmkit.classic.data import load_images
from llmkit.classic.launch import start
from llmkit.classic.models import LeNet, SmallResNet
from llmkit.classic.registry import load_weights
from llmkit.errors import UserError, run_cli
from llmkit.launch import one_run_per_output_dir


@dataclass
class CNNArguments(ImageArguments, recipe="train-cnn", app_flag="cnn", sizes=("image_size",)):
    output_dir: str = "runs/cnn"
    num_train_epochs: int = epochs(40)
    arch: str = field(default="lenet", metadata={"help": "lenet or resnet.", "choices": ["lenet", "resnet"]})
    image_size: int | None = field(
        default=None, metadata={"help": "Resize images to this side (default: the data's own size)."}
    )
    augment: bool = field(
        default=True, metadata={"help": "Random small rotations and shifts while training."}
    )
    init_from: str | None = field(
        default=None, metadata={"help": "A saved CNN of the same architecture to start from."}
    )
    freeze_features: bool = field(
        default=False, metadata={"help": "With --init_from: train only the classifier head."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.freeze_features and not self.init_from:  # it froze random features and trained the head alone
            raise UserError(
                "--freeze_features keeps the features of a saved CNN: it goes with --init_from DIR."
            )


TYPES = (CNNArguments,)


def _keep_statistics(norm: nn.Module, inputs: tuple) -> None:
    norm.eval()  # the training loop's model.train() would update its running statistics


@one_run_per_output_dir
def main(argv: list[str] | None = None) -> dict:
    """Train the CNN the flags describe; returns metrics.json's content."""
    (args,) = parse_args(TYPES, argv)
    start(args)
    train, test, n_classes = load_images(args.dataset, args.image_size, seed=args.seed, min_classes=2)
    channels, height, width = train.tensors[0].shape[1:]
    if height != width:
        raise UserError(
            f"the images of {args.dataset} are {height}x{width}; pass --image_size N to train on N x N squares."
        )
    if args.arch == "lenet":
        kwargs = {"n_classes": n_classes, "channels": channels, "size": height}
        model = LeNet(**kwargs)
    else:
        kwargs = {"n_classes": n_classes, "channels": channels}
        model = SmallResNet(**kwargs)
    try:  # a side the pooling layers shrink to nothing: a RuntimeError at the first batch
        with torch.no_grad():
            model.eval()(train.tensors[0][:1])
    except RuntimeError:
        raise UserError(
            f"{height}x{width} images are too small for {args.arch}; pass a larger --image_size, such as 8."
        ) from None
    model.train()
    if args.init_from:
        state, saved = load_weights(args.init_from, args.arch)
        if saved.get("image_size", height) != height or saved["kwargs"].get("channels", channels) != channels:
            raise UserError(
                f"{args.init_from} was trained on {saved['kwargs'].get('channels')}-channel "
                f"{saved.get('image_size')}-pixel images, these are {channels}-channel {height}-pixel; "
                f"pass --image_size {saved.get('image_size')} or start from scratch."
            )
        own = model.state_dict()
        # A new head when the number of classes differs.
        state = {
            k: v
            for k, v in state.items()
            if not (k.startswith(type(model).head_prefix) and v.shape != own[k].shape)
        }
        model.load_state_dict(state, strict=False)
        if args.freeze_features:
            for name, p in model.named_parameters():
                p.requires_grad = name.startswith(type(model).head_prefix)
            for layer in model.modules():  # frozen BatchNorm keeps its statistics too, as at evaluation
                if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                    layer.register_forward_pre_hook(_keep_statistics)
    config = {"architecture": args.arch, "kwargs": kwargs, "image_size": height}
    return train_classifier(args, model, train, test, config=config, use_augmentation=args.augment)


if __name__ == "__main__":
    run_cli(main)
