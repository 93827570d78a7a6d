"""The NumPy MLP: gradients match finite differences and torch autograd; every optimizer learns."""

import numpy as np
import pytest
import torch

from llmkit.classic.mlp_numpy import ACTIVATIONS, NumpyMLP, Optimizer, numerical_gradient


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse"])
def test_gradients_match_finite_differences(activation, loss):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4))
    n_out = 3 if loss == "cross_entropy" else 1
    y = rng.integers(0, 3, 5) if loss == "cross_entropy" else rng.integers(0, 2, 5)
    net = NumpyMLP([4, 6, n_out], activation, loss, seed=1)
    net.loss_and_gradients(x, y)
    for layer in (0, 2):
        for key in ("W", "b"):
            numeric = numerical_gradient(net, x, y, layer=layer, key=key)
            assert np.allclose(net.layers[layer].grads[key], numeric, rtol=1e-4, atol=1e-7), (
                activation,
                loss,
                layer,
                key,
            )


def test_gradients_match_torch_autograd():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 5)), rng.integers(0, 4, 8)
    net = NumpyMLP([5, 7, 4], "tanh", seed=2)
    net.loss_and_gradients(x, y)
    W1, b1, W2, b2 = (
        torch.tensor(net.layers[i].params[k], requires_grad=True)
        for i, k in [(0, "W"), (0, "b"), (2, "W"), (2, "b")]
    )
    logits = torch.tanh(torch.tensor(x) @ W1 + b1) @ W2 + b2
    torch.nn.functional.cross_entropy(logits, torch.tensor(y)).backward()
    assert np.allclose(W1.grad.numpy(), net.layers[0].grads["W"]) and np.allclose(
        b2.grad.numpy(), net.layers[2].grads["b"]
    )


@pytest.mark.parametrize(
    ("optimizer", "lr"), [("sgd", 0.5), ("momentum", 0.1), ("rmsprop", 0.01), ("adam", 0.01)]
)
def test_every_optimizer_learns_xor(optimizer, lr):
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 8, dtype=float)
    y = np.array([0, 1, 1, 0] * 8)
    net = NumpyMLP([2, 16, 2], "tanh", seed=0)
    history = net.fit(x, y, Optimizer(optimizer, lr), epochs=300, batch_size=8)
    assert history[-1] < 0.1 * history[0] and (net.predict(x) == y).all()


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="unknown activation"):
        NumpyMLP([2, 2], "swish")
    with pytest.raises(ValueError, match="unknown optimizer"):
        Optimizer("lbfgs")
