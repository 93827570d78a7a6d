"""A deep belief network on the digits: RBMs pretrained with contrastive divergence, then fine-tuned with
backpropagation (the shared training loop), against the same network trained from random initialisation.

    python recipes/train_dbn.py                              # CD-1; pictures in runs/dbn
    python recipes/train_dbn.py --cd_k 3 --persistent        # PCD-3
"""

import json
import math
from dataclasses import dataclass, field, replace

import torch
from safetensors.torch import save

from llmkit import record
from llmkit.arguments import parse_args
from llmkit.classic import checkpoints
from llmkit.classic.arguments import ImageArguments
from llmkit.classic.classify import train_classifier
from llmkit.classic.data import load_images
from llmkit.classic.launch import start
from llmkit.classic.loop import check_one_batch, write_report
from llmkit.classic.rbm import DBN
from llmkit.errors import UserError, run_cli
from llmkit.launch import one_run_per_output_dir
from llmkit.plots import plot_history, save_grid


@dataclass
class DBNArguments(ImageArguments, recipe="train-dbn", app_flag="dbn", sizes=("hidden",)):
    output_dir: str = "runs/dbn"
    num_train_epochs: int = field(
        default=40,
        metadata={
            "help": "Backpropagation epochs (both networks).",
            "aliases": ["--epochs", "--finetune_epochs"],
        },
    )
    per_device_train_batch_size: int = field(
        default=32,
        metadata={"help": "Examples per batch (CD and backpropagation).", "aliases": ["--batch_size"]},
    )
    learning_rate: float = field(default=1e-2, metadata={"help": "Adam learning rate of the fine-tuning."})
    hidden: list[int] = field(
        default_factory=lambda: [128, 64], metadata={"help": "Hidden units of each RBM."}
    )
    pretrain_epochs: int = field(default=20, metadata={"help": "CD epochs per RBM."})
    cd_k: int = field(default=1, metadata={"help": "Gibbs steps per update (CD-k)."})
    persistent: bool = field(default=False, metadata={"help": "Persistent contrastive divergence."})
    rbm_learning_rate: float = field(default=0.05, metadata={"help": "Learning rate of the CD updates."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pretrain_epochs < 1 or self.cd_k < 1:
            raise UserError(
                f"--pretrain_epochs and --cd_k must be at least 1, got {self.pretrain_epochs} and {self.cd_k}."
            )
        if not 0 < self.rbm_learning_rate < float("inf"):  # a negative one climbed the energy, without a word
            raise UserError(f"--rbm_learning_rate must be positive, got {self.rbm_learning_rate}.")


TYPES = (DBNArguments,)


def pretrain(args: DBNArguments, dbn: DBN, images: torch.Tensor, out) -> list[list[dict]]:
    """Greedy CD pretraining, with each RBM's curves, the first layer's filters and its reconstructions."""
    flat = images.flatten(1)
    layers = dbn.pretrain(
        flat,
        args.pretrain_epochs,
        batch_size=args.per_device_train_batch_size,
        lr=args.rbm_learning_rate,
        k=args.cd_k,
        persistent=args.persistent,
        seed=args.seed,
    )
    for i, history in enumerate(layers):
        # a NaN RBM went on into both classifiers, whose error then named the wrong learning rate
        broken = next((row for row in history if not all(math.isfinite(v) for v in row.values())), None)
        if broken:
            from llmkit.lm.divergence import diverged  # only now: llmkit.lm loads transformers

            what = "the contrastive-divergence figures are NaN or infinite; nothing was fine-tuned"
            lr = args.rbm_learning_rate
            raise diverged(f"epoch {broken['epoch']} of RBM {i + 1}", what, lr, flag="--rbm_learning_rate")
        plot_history(history, out / f"rbm{i + 1}_curves.png", f"RBM {i + 1}")
    w = dbn.rbms[0].W.T[:64].reshape(-1, *images.shape[1:])
    low, high = w.amin(dim=(1, 2, 3), keepdim=True), w.amax(dim=(1, 2, 3), keepdim=True)
    save_grid((w - low) / (high - low + 1e-8), out / "filters.png")
    save_grid(
        torch.cat([images[:16], dbn.rbms[0].reconstruct(flat[:16]).reshape(-1, *images.shape[1:])]),
        out / "reconstructions.png",
    )
    return layers


def classifier_config(args: DBNArguments, dbn: DBN, n_classes: int, pretrained: bool) -> dict:
    """What a classifier's checkpoint records: the pretrained one also starts from the RBMs these flags make."""
    config = {
        "architecture": "dbn-classifier",
        "sizes": dbn.sizes,
        "n_classes": n_classes,
        "pretrained": pretrained,
    }
    if pretrained:
        keys = ("pretrain_epochs", "cd_k", "persistent", "rbm_learning_rate")
        config["rbm"] = {k: getattr(args, k) for k in keys}
    return config


def refuse_changed_rbms(out, config: dict) -> None:
    """Refuse, before the RBMs retrain, a resume whose RBM flags changed: the resumed classifier came from the
    old RBMs while dbn.safetensors, the pictures and rbm_history described the new ones."""
    root = out / "pretrained" / "checkpoints"
    found = checkpoints.newest_complete(root, announce=False) if root.is_dir() else None
    if found:
        checkpoints.refuse_other_config(found[0], found[1], config)


@one_run_per_output_dir
def main(argv: list[str] | None = None) -> dict:
    """Pretrain the RBMs, fine-tune both networks; returns metrics.json's content."""
    (args,) = parse_args(TYPES, argv)
    out = start(args)
    train, test, n_classes = load_images(args.dataset, seed=args.seed, min_classes=2)
    check_one_batch(len(train), args)  # else the CD pretraining's IndexError: it too takes whole batches only
    dbn = DBN([train.tensors[0][0].numel(), *args.hidden], n_classes, args.seed)
    refuse_changed_rbms(out, classifier_config(args, dbn, n_classes, True))
    rbm_history = pretrain(args, dbn, train.tensors[0], out)
    results = {}
    for name, pretrained in (("pretrained", True), ("random_init", False)):
        sub = replace(args, output_dir=str(out / name))
        config = classifier_config(args, dbn, n_classes, pretrained)
        net = dbn.classifier(pretrained, args.seed)
        results[name] = train_classifier(sub, net, train, test, config=config, summary=False)
        if results[name]:
            print(f"{name}: test accuracy {results[name]['eval_accuracy']:.4f}")
    if not results["pretrained"]:  # not the main process
        return {}
    record.write_atomic(
        out / "dbn.safetensors", save({k: v.contiguous() for k, v in dbn.state_dict().items()})
    )
    record.write_atomic(
        out / "config.json", json.dumps({"architecture": "dbn", "sizes": dbn.sizes, "n_classes": n_classes})
    )
    best = {
        name: max(row["eval_accuracy"] for row in r["log_history"] if "eval_accuracy" in row)
        for name, r in results.items()
    }
    main_run = results["pretrained"]
    metrics = {
        "train_loss": main_run["train_loss"],  # this run's epochs only, not every run's
        "eval_loss": main_run["eval_loss"],
        "eval_accuracy": main_run["eval_accuracy"],
        "best_eval_accuracy": best["pretrained"],
        "random_init_eval_accuracy": results["random_init"]["eval_accuracy"],
        "random_init_best_eval_accuracy": best["random_init"],
        "epoch": main_run["epoch"],
        "global_step": main_run["global_step"],
        "world_size": main_run["world_size"],
        "rbm_history": rbm_history,
    }
    return write_report(
        args,
        metrics,
        main_run["log_history"],
        title="DBN (RBM-pretrained, fine-tuned)",
        headline=("accuracy", "random_init_eval_accuracy"),
    )


if __name__ == "__main__":
    run_cli(main)
