"""A CNN on images (LeNet or a small ResNet), with augmentation and transfer learning from a checkpoint.

    python recipes/train_cnn.py                                    # LeNet on the digits, upsampled to 16x16
    python recipes/train_cnn.py --arch resnet --augment
    python recipes/train_cnn.py --init_from runs/cnn --freeze_features --dataset my.npz   # transfer learning
"""

from dataclasses import dataclass, field

from llmkit.arguments import parse_args
from llmkit.classic.classify import train_classifier
from llmkit.classic.data import check_images, load_images
from llmkit.classic.loop import ClassicArguments, load_weights
from llmkit.classic.models import LeNet, SmallResNet
from llmkit.errors import UserError, run_cli


@dataclass
class CNNArguments(ClassicArguments):
    output_dir: str = "runs/cnn"
    epochs: int = 40
    arch: str = field(default="lenet", metadata={"help": "lenet or resnet."})
    image_size: int = field(default=16, metadata={"help": "Images are resized to this (digits are 8x8)."})
    augment: bool = field(default=True, metadata={"help": "Random small rotations and shifts while training."})
    init_from: str | None = field(default=None, metadata={"help": "A saved CNN of the same architecture to start from."})
    freeze_features: bool = field(default=False, metadata={"help": "With --init_from: train only the classifier head."})


def main(argv=None) -> dict:
    args = parse_args((CNNArguments,), argv)[0]
    if args.arch not in ("lenet", "resnet"):
        raise UserError(f"--arch must be lenet or resnet, got {args.arch!r}.")
    train, test, n_classes = load_images(args.dataset, args.image_size)
    channels = train.tensors[0].shape[1]
    if args.arch == "lenet":
        kwargs = {"n_classes": n_classes, "channels": channels, "size": args.image_size}
        model = LeNet(**kwargs)
    else:
        kwargs = {"n_classes": n_classes, "channels": channels}
        model = SmallResNet(**kwargs)
    check_images(train.tensors[0], channels, args.image_size, args.arch)
    if args.init_from:
        state, _ = load_weights(args.init_from, args.arch)
        head = model.head
        own = model.state_dict()
        state = {k: v for k, v in state.items() if not (k.startswith(head) and v.shape != own[k].shape)}  # a new head if classes differ
        model.load_state_dict(state, strict=False)
        if args.freeze_features:
            for name, p in model.named_parameters():
                p.requires_grad = name.startswith(head)
    return train_classifier(args, model, train, test, {"architecture": args.arch, "kwargs": kwargs}, use_augmentation=args.augment)


if __name__ == "__main__":
    run_cli(main)
