"""An MLP on the digits, twice: from scratch in NumPy (backprop and optimizers written out) and in PyTorch.

python recipes/train_mlp.py                                  # both, on scikit-learn's digits
accelerate launch recipes/train_mlp.py --impl torch --activation tanh --hidden 256 128
"""

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import accuracy_score

from llmkit.arguments import parse_args
from llmkit.classic.arguments import ImageArguments, epochs
from llmkit.classic.classify import train_classifier
from llmkit.classic.data import load_images
from llmkit.classic.launch import start
from llmkit.classic.loop import write_report
from llmkit.classic.mlp_numpy import NumpyMLP, Optimizer
from llmkit.classic.models import MLP
from llmkit.errors import UserError, run_cli
from llmkit.launch import one_run_per_output_dir


@dataclass
class MLPArguments(ImageArguments, recipe="train-mlp", sizes=("hidden",)):
    output_dir: str = "runs/mlp"
    num_train_epochs: int = epochs(40)
    impl: str = field(
        default="both", metadata={"help": "numpy, torch or both.", "choices": ["numpy", "torch", "both"]}
    )
    hidden: list[int] = field(default_factory=lambda: [128, 64], metadata={"help": "Hidden layer widths."})
    activation: str = field(
        default="relu",
        metadata={
            "help": "relu, leaky_relu, tanh, sigmoid or identity (none).",
            "choices": ["relu", "leaky_relu", "tanh", "sigmoid", "identity"],
        },
    )
    optimizer: str = field(
        default="adam", metadata={"help": "NumPy optimizer: sgd, momentum, rmsprop or adam."}
    )


TYPES = (MLPArguments,)


def train_numpy(args: MLPArguments, train, test, n_classes: int) -> dict:
    """The NumPy MLP: returns its metrics (numpy_ keys) and writes numpy_mlp.npz."""
    x, y = train.tensors[0].flatten(1).numpy().astype(np.float64), train.tensors[1].numpy()
    xt, yt = test.tensors[0].flatten(1).numpy().astype(np.float64), test.tensors[1].numpy()
    try:
        net = NumpyMLP([x.shape[1], *args.hidden, n_classes], args.activation, seed=args.seed)
        losses = net.fit(
            x,
            y,
            Optimizer(args.optimizer, args.learning_rate),
            epochs=args.num_train_epochs,
            batch_size=args.per_device_train_batch_size,
            seed=args.seed,
        )
    except ValueError as err:
        raise UserError(str(err)) from None
    weights = [v for layer in net.layers for v in layer.params.values()]
    if not (np.isfinite(losses[-1]) and all(np.isfinite(w).all() for w in weights)):
        # before the save: NaN weights in numpy_mlp.npz are no model
        from llmkit.lm.divergence import diverged  # only now: llmkit.lm loads transformers

        what = f"the NumPy MLP's loss is {losses[-1]}; numpy_mlp.npz was not written"
        raise diverged(f"epoch {len(losses)}", what, args.learning_rate)
    np.savez(
        f"{args.output_dir}/numpy_mlp.npz",
        **{f"{i}.{k}": v for i, layer in enumerate(net.layers) for k, v in layer.params.items()},
    )
    accuracy = float(accuracy_score(yt, net.predict(xt)))
    print(f"NumPy MLP: test accuracy {accuracy:.4f}")
    return {"numpy_train_loss": losses[-1], "numpy_eval_accuracy": accuracy, "numpy_loss_per_epoch": losses}


@one_run_per_output_dir
def main(argv: list[str] | None = None) -> dict:
    """Train the MLP(s) the flags describe; returns metrics.json's content."""
    (args,) = parse_args(TYPES, argv)
    start(args)
    train, test, n_classes = load_images(args.dataset, seed=args.seed, min_classes=2)
    numpy_metrics = train_numpy(args, train, test, n_classes) if args.impl in ("numpy", "both") else {}
    if args.impl == "numpy":
        losses = numpy_metrics["numpy_loss_per_epoch"]
        # optimizer steps, not epochs: "3 steps" was said of 3 epochs of 23 batches each
        per_epoch = -(-len(train) // args.per_device_train_batch_size)
        history = [
            {"epoch": i + 1, "step": (i + 1) * per_epoch, "train_loss": v} for i, v in enumerate(losses)
        ]
        metrics = {"eval_accuracy": numpy_metrics["numpy_eval_accuracy"], **numpy_metrics}
        metrics["global_step"] = len(losses) * per_epoch
        return write_report(args, metrics, history, title="NumPy MLP")
    features = train.tensors[0][0].numel()
    kwargs = {
        "in_features": features,
        "n_classes": n_classes,
        "hidden": tuple(args.hidden),
        "activation": args.activation,
    }
    return train_classifier(
        args,
        MLP(**kwargs),
        train,
        test,
        config={"architecture": "mlp", "kwargs": kwargs},
        extra=numpy_metrics,
    )


if __name__ == "__main__":
    run_cli(main)
