"""A deep belief network on the digits: RBMs pretrained with contrastive divergence, then fine-tuned with
backpropagation, against the same network trained from random initialisation.

    python recipes/train_dbn.py                              # CD-1; pictures in runs/dbn
    python recipes/train_dbn.py --cd_k 3 --persistent        # PCD-3
"""

import json
from dataclasses import dataclass, field

import torch
from safetensors.torch import save_file

from llmkit.arguments import parse_args
from llmkit.classic.classify import accuracy
from llmkit.classic.data import load_images
from llmkit.classic.loop import plot_history, save_grid
from llmkit.classic.rbm import DBN
from llmkit.errors import run_cli
from llmkit.runtime import prepare_output_dir


@dataclass
class DBNArguments:
    output_dir: str = "runs/dbn"
    dataset: str = "digits"
    hidden: list[int] = field(default_factory=lambda: [128, 64], metadata={"help": "Hidden units of each RBM."})
    pretrain_epochs: int = field(default=20, metadata={"help": "CD epochs per RBM."})
    finetune_epochs: int = field(default=40, metadata={"help": "Backpropagation epochs (both networks)."})
    cd_k: int = field(default=1, metadata={"help": "Gibbs steps per update (CD-k)."})
    persistent: bool = field(default=False, metadata={"help": "Persistent contrastive divergence."})
    rbm_learning_rate: float = 0.05
    learning_rate: float = 1e-2
    batch_size: int = 32
    seed: int = 0


def finetune(model: torch.nn.Module, train, test, epochs: int, lr: float, batch_size: int, seed: int) -> list[dict]:
    """Plain backpropagation with Adam; returns per-epoch loss and test accuracy."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = train.tensors
    g = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        model.train()
        order, total = torch.randperm(len(x), generator=g), 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        model.eval()
        history.append({"epoch": epoch + 1, "loss": total / len(x), "test_accuracy": accuracy(model, test)})
    return history


def main(argv=None) -> dict:
    args = parse_args((DBNArguments,), argv)[0]
    out = prepare_output_dir(args.output_dir)
    train, test, n_classes = load_images(args.dataset)
    flat = train.tensors[0].flatten(1)
    dbn = DBN([flat.shape[1], *args.hidden], n_classes, args.seed)
    layers = dbn.pretrain(flat, args.pretrain_epochs, batch_size=args.batch_size, lr=args.rbm_learning_rate, k=args.cd_k,
                          persistent=args.persistent, seed=args.seed)
    for i, history in enumerate(layers):
        plot_history(history, out / f"rbm{i + 1}_curves.png", f"RBM {i + 1}")
    side = int(flat.shape[1] ** 0.5)
    w = dbn.rbms[0].W.T[:64].reshape(-1, 1, side, side)
    save_grid((w - w.amin(dim=(2, 3), keepdim=True)) / (w.amax(dim=(2, 3), keepdim=True) - w.amin(dim=(2, 3), keepdim=True) + 1e-8),
              out / "filters.png")
    save_grid(torch.cat([train.tensors[0][:16], dbn.rbms[0].reconstruct(flat[:16]).reshape(-1, 1, side, side)]), out / "reconstructions.png")
    results = {}
    for name, pretrained in (("pretrained", True), ("random_init", False)):
        history = finetune(dbn.classifier(pretrained, args.seed), train, test, args.finetune_epochs, args.learning_rate, args.batch_size, args.seed)
        results[name] = {"test_accuracy": history[-1]["test_accuracy"], "best_test_accuracy": max(h["test_accuracy"] for h in history),
                         "history": history}
        print(f"{name}: test accuracy {history[-1]['test_accuracy']:.4f}")
    results["rbm_history"] = layers
    save_file({k: v.contiguous() for k, v in dbn.state_dict().items()}, out / "dbn.safetensors")
    (out / "metrics.json").write_text(json.dumps(results, indent=2))
    (out / "config.json").write_text(json.dumps({"architecture": "dbn", "sizes": dbn.sizes, "n_classes": n_classes}))
    return results


if __name__ == "__main__":
    run_cli(main)
