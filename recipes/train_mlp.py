"""An MLP on the digits, twice: from scratch in NumPy (backprop and optimizers written out) and in PyTorch.

    python recipes/train_mlp.py                                  # both, on scikit-learn's digits
    accelerate launch recipes/train_mlp.py --impl torch --activation tanh --hidden 256 128
"""

import json
from dataclasses import dataclass, field

import numpy as np

from llmkit.arguments import parse_args
from llmkit.classic.classify import train_classifier
from llmkit.classic.data import load_images
from llmkit.classic.loop import ClassicArguments
from llmkit.classic.mlp_numpy import NumpyMLP, Optimizer
from llmkit.classic.models import MLP
from llmkit.errors import UserError, run_cli
from llmkit.runtime import prepare_output_dir


@dataclass
class MLPArguments(ClassicArguments):
    output_dir: str = "runs/mlp"
    epochs: int = 40
    impl: str = field(default="both", metadata={"help": "numpy, torch or both."})
    hidden: list[int] = field(default_factory=lambda: [128, 64], metadata={"help": "Hidden layer widths."})
    activation: str = field(default="relu", metadata={"help": "relu, leaky_relu, tanh or sigmoid."})
    optimizer: str = field(default="adam", metadata={"help": "NumPy optimizer: sgd, momentum, rmsprop or adam."})


def main(argv=None) -> dict:
    args = parse_args((MLPArguments,), argv)[0]
    if args.impl not in ("numpy", "torch", "both"):
        raise UserError(f"--impl must be numpy, torch or both, got {args.impl!r}.")
    train, test, n_classes = load_images(args.dataset)
    features = train.tensors[0][0].numel()
    results = {}
    if args.impl in ("numpy", "both"):
        x, y = train.tensors[0].flatten(1).numpy().astype(np.float64), train.tensors[1].numpy()
        xt, yt = test.tensors[0].flatten(1).numpy().astype(np.float64), test.tensors[1].numpy()
        try:
            net = NumpyMLP([features, *args.hidden, n_classes], args.activation, seed=args.seed)
            history = net.fit(x, y, Optimizer(args.optimizer, args.learning_rate), args.epochs, args.batch_size, args.seed)
        except ValueError as err:
            raise UserError(str(err)) from None
        results["numpy"] = {"test_accuracy": float((net.predict(xt) == yt).mean()), "final_loss": history[-1], "loss_per_epoch": history}
        out = prepare_output_dir(args.output_dir)
        np.savez(out / "numpy_mlp.npz", **{f"{i}.{k}": v for i, layer in enumerate(net.layers) for k, v in layer.params.items()})
        print(f"NumPy MLP: test accuracy {results['numpy']['test_accuracy']:.4f}")
    if args.impl in ("torch", "both"):
        kwargs = {"in_features": features, "n_classes": n_classes, "hidden": tuple(args.hidden), "activation": args.activation}
        results["torch"] = train_classifier(args, MLP(**kwargs), train, test, {"architecture": "mlp", "kwargs": kwargs})
    out = prepare_output_dir(args.output_dir)
    (out / "mlp_results.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    run_cli(main)
