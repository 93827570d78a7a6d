"""Classifiers and sequence models: MLP, LeNet, a small ResNet, and RNN/LSTM/GRU behind one interface."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """Flatten, then Linear + activation layers."""

    def __init__(
        self, in_features: int, n_classes: int, hidden: tuple[int, ...] = (128, 64), activation: str = "relu"
    ):
        super().__init__()
        act = {
            "relu": nn.ReLU,
            "tanh": nn.Tanh,
            "sigmoid": nn.Sigmoid,
            "leaky_relu": nn.LeakyReLU,
            "identity": nn.Identity,  # no non-linearity: the layers collapse into one linear map
        }[activation]
        sizes = [in_features, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), act()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Images for a model of `channels` inputs: a grey image is the colour image with three equal channels (a
    drawing in the app, for a model trained on colour), and a colour one reads as its mean for a grey model."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, channels, -1, -1)
    if channels == 1:
        return x[:, :3].mean(1, keepdim=True)
    return x  # let the first layer say what it expects


class LeNet(nn.Module):
    """LeNet-5 in spirit: two conv + pool stages, then three fully connected layers (ReLU, max-pool)."""

    head_prefix = "classifier.5."  # the last layer: replaced and trained alone in transfer learning

    def __init__(self, n_classes: int = 10, channels: int = 1, size: int = 16):
        super().__init__()
        self.size = size  # the image side it was built for
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * (size // 4) ** 2, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(match_channels(x, self.features[0].in_channels)))


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the input (projected when the shape changes), then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + self.skip(x))


class SmallResNet(nn.Module):
    """A stem and three residual stages (widths w, 2w, 4w), global average pooling, a linear head."""

    head_prefix = (
        "head."  # not `head`: a class attribute of that name hid the layer, so forward() called a str
    )

    def __init__(self, n_classes: int = 10, channels: int = 1, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.stages = nn.Sequential(
            ResidualBlock(width, width),
            ResidualBlock(width, 2 * width, 2),
            ResidualBlock(2 * width, 4 * width, 2),
        )
        self.head = nn.Linear(4 * width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(match_channels(x, self.stem[0].in_channels))).mean(dim=(2, 3)))


CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class SequenceModel(nn.Module):
    """RNN, LSTM or GRU over embedded tokens: a language model (a prediction per step) or a classifier (one per sequence)."""

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        hidden: int = 256,
        layers: int = 2,
        embed: int = 64,
        n_classes: int | None = None,
        dropout: float = 0.1,
    ):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose rnn, lstm or gru")
        self.embed = nn.Embedding(vocab_size, embed)
        self.rnn = CELLS[cell](
            embed, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.head = nn.Linear(hidden, n_classes or vocab_size)
        self.classify = n_classes is not None

    def forward(self, ids: torch.Tensor, state=None):
        out, state = self.rnn(self.embed(ids), state)
        if self.classify:
            return self.head(out[:, -1]), state  # the last step has read the whole sequence
        return self.head(out), state

    @torch.no_grad()
    def sample(
        self,
        prefix: list[int],
        length: int,
        temperature: float = 0.8,
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """Sample `length` tokens after `prefix`, carrying the recurrent state step by step."""
        self.eval()
        ids = torch.tensor([prefix], device=self.head.weight.device)
        logits, state = self(ids)
        out = []
        for _ in range(length):
            probs = (logits[0, -1] / max(temperature, 1e-4)).softmax(-1)
            nxt = int(torch.multinomial(probs.cpu(), 1, generator=generator))
            out.append(nxt)
            logits, state = self(torch.tensor([[nxt]], device=ids.device), state)
        return out
