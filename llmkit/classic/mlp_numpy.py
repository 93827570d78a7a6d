"""A multilayer perceptron from scratch in NumPy: layers, activations, losses, backpropagation, optimizers.

Everything a framework hides is written out: each layer caches its input in `forward` and
returns the gradient with respect to it in `backward`, storing its own parameter gradients.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), written with tanh: exp(-x) overflowed for x below -709 (a raw RuntimeWarning)."""
    return 0.5 * (1 + np.tanh(0.5 * x))


# Each activation: (function, derivative written in terms of the input x and output y).
ACTIVATIONS = {
    "relu": (lambda x: np.maximum(x, 0), lambda x, y: (x > 0).astype(x.dtype)),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.01 * x), lambda x, y: np.where(x > 0, 1.0, 0.01)),
    "tanh": (np.tanh, lambda x, y: 1 - y**2),
    "sigmoid": (sigmoid, lambda x, y: y * (1 - y)),
    "identity": (lambda x: x, lambda x, y: np.ones_like(x)),
}


class Dense:
    """y = x W + b, with He/Xavier-style initialisation."""

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator, activation: str = "relu"):
        scale = np.sqrt(2.0 / n_in) if activation in ("relu", "leaky_relu") else np.sqrt(1.0 / n_in)
        self.params = {"W": rng.normal(0, scale, (n_in, n_out)), "b": np.zeros(n_out)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        self.grads["W"] = self.x.T @ grad
        self.grads["b"] = grad.sum(axis=0)
        return grad @ self.params["W"].T


class Activation:
    """An elementwise nonlinearity."""

    def __init__(self, name: str):
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
        self.f, self.df = ACTIVATIONS[name]
        self.params, self.grads = {}, {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x, self.y = x, self.f(x)
        return self.y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * self.df(self.x, self.y)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum for numerical stability."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def loss_and_grad(name: str, out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean loss over the batch and its gradient w.r.t. the network output (logits for the CE losses)."""
    n = len(out)
    if name == "cross_entropy":  # softmax + negative log-likelihood, fused: the gradient is p - onehot
        p = softmax(out)
        loss = -np.log(p[np.arange(n), y] + 1e-12).mean()
        p[np.arange(n), y] -= 1
        return float(loss), p / n
    if name == "binary_cross_entropy":  # sigmoid + BCE on one logit per row
        p = sigmoid(out)
        t = y.reshape(out.shape).astype(float)
        loss = -(t * np.log(p + 1e-12) + (1 - t) * np.log(1 - p + 1e-12)).mean()
        return float(loss), (p - t) / out.size
    if name == "mse":
        t = y.reshape(out.shape).astype(float)
        return float(((out - t) ** 2).mean()), 2 * (out - t) / out.size
    raise ValueError(f"unknown loss {name!r}; choose cross_entropy, binary_cross_entropy or mse")


class Optimizer:
    """SGD, momentum, RMSProp and Adam, each updating every parameter in place."""

    def __init__(
        self,
        name: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ):
        if name not in ("sgd", "momentum", "rmsprop", "adam"):
            raise ValueError(f"unknown optimizer {name!r}; choose sgd, momentum, rmsprop or adam")
        self.name, self.lr, self.b1, self.b2, self.eps = name, lr, momentum, beta2, eps
        self.state: dict[int, dict] = {}
        self.t = 0

    def step(self, layers: list) -> None:
        self.t += 1
        for layer in layers:
            for key, p in layer.params.items():
                g = layer.grads[key]
                s = self.state.setdefault(id(p), {"m": np.zeros_like(p), "v": np.zeros_like(p)})
                if self.name == "sgd":
                    p -= self.lr * g
                elif self.name == "momentum":
                    s["m"] = self.b1 * s["m"] + g
                    p -= self.lr * s["m"]
                elif self.name == "rmsprop":
                    s["v"] = self.b2 * s["v"] + (1 - self.b2) * g**2
                    p -= self.lr * g / (np.sqrt(s["v"]) + self.eps)
                else:  # adam, with bias correction of both moments
                    s["m"] = self.b1 * s["m"] + (1 - self.b1) * g
                    s["v"] = self.b2 * s["v"] + (1 - self.b2) * g**2
                    m_hat, v_hat = s["m"] / (1 - self.b1**self.t), s["v"] / (1 - self.b2**self.t)
                    p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class NumpyMLP:
    """Dense layers with an activation between them; the last layer outputs logits (or values for MSE)."""

    def __init__(
        self, sizes: list[int], activation: str = "relu", loss: str = "cross_entropy", seed: int = 0
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        rng = np.random.default_rng(seed)
        self.layers: list = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            self.layers.append(Dense(a, b, rng, activation))
            if i < len(sizes) - 2:
                self.layers.append(Activation(activation))
        self.loss = loss

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad: np.ndarray) -> None:
        for layer in reversed(self.layers):
            grad = layer.backward(grad)

    def loss_and_gradients(self, x: np.ndarray, y: np.ndarray) -> float:
        """Forward, loss, and backward: leaves every layer's .grads filled."""
        loss, grad = loss_and_grad(self.loss, self.forward(x), y)
        self.backward(grad)
        return loss

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = self.forward(x)
        if self.loss == "cross_entropy":
            return out.argmax(axis=1)
        return (out.ravel() > 0).astype(int) if self.loss == "binary_cross_entropy" else out

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        optimizer: Optimizer,
        *,
        epochs: int = 30,
        batch_size: int = 32,
        seed: int = 0,
    ) -> list[float]:
        """Mini-batch training; returns each epoch's mean loss per example, ending at the first that is not finite."""
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be at least 1, got {epochs} and {batch_size}")
        rng = np.random.default_rng(seed)
        history = []
        # a diverging run overflows: the NaN loss it returns says so, not NumPy's warning with its source line
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(epochs):
                order = rng.permutation(len(x))
                losses, sizes = [], []
                for i in range(0, len(x), batch_size):
                    idx = order[i : i + batch_size]
                    losses.append(self.loss_and_gradients(x[idx], y[idx]))
                    sizes.append(len(idx))
                    optimizer.step([layer for layer in self.layers if layer.params])
                # per example: the last, smaller batch counted as much as a full one
                history.append(float(np.average(losses, weights=sizes)))
                if not np.isfinite(history[-1]):
                    break
        return history


def numerical_gradient(
    model: NumpyMLP, x: np.ndarray, y: np.ndarray, *, layer: int, key: str, eps: float = 1e-5
) -> np.ndarray:
    """Central finite differences of the loss w.r.t. one parameter array (for gradient checks)."""
    p = model.layers[layer].params[key]
    grad = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        old = p[i]
        p[i] = old + eps
        plus, _ = loss_and_grad(model.loss, model.forward(x), y)
        p[i] = old - eps
        minus, _ = loss_and_grad(model.loss, model.forward(x), y)
        p[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad
