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


def test_an_epochs_loss_is_its_mean_per_example():
    # batch means were averaged as equals: a last batch of 1 example weighed as much as a full one
    from llmkit.classic.mlp_numpy import loss_and_grad

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 3)), rng.integers(0, 2, 9)
    net = NumpyMLP([3, 4, 2], "tanh", seed=0)
    whole, _ = loss_and_grad("cross_entropy", net.forward(x), y)
    (epoch,) = net.fit(x, y, Optimizer("sgd", 1e-12), epochs=1, batch_size=4)  # batches of 4, 4 and 1
    assert epoch == pytest.approx(whole, rel=1e-6)


def test_the_numpy_recipe_counts_optimizer_steps_not_epochs(tmp_path):
    # "training 3 steps" was printed for 3 epochs of 23 batches each
    from llmkit.recipes import train_mlp

    argv = ["--impl", "numpy", "--num_train_epochs", "2", "--batch_size", "500", "--hidden", "8"]
    metrics = train_mlp.main([*argv, "--output_dir", str(tmp_path / "run")])
    assert metrics["global_step"] == 2 * 3  # the digits' 1,437 or so training images: 3 batches of 500
    assert [row["step"] for row in metrics["log_history"]] == [3, 6]


def test_sigmoid_never_overflows():
    # np.exp(-x) overflowed for a large negative x: a raw "RuntimeWarning: overflow encountered in exp" with
    # its source line, printed by a run with a high --learning_rate
    import warnings

    from llmkit.classic.mlp_numpy import loss_and_grad, sigmoid

    x = np.array([-1000.0, -3.0, 0.0, 3.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sigmoid(x) == pytest.approx([0.0, 1 / (1 + np.exp(3.0)), 0.5, 1 / (1 + np.exp(-3.0)), 1.0])
        ACTIVATIONS["sigmoid"][0](x)
        loss_and_grad("binary_cross_entropy", x[:, None], np.array([0, 0, 1, 1, 1]))


def test_a_diverging_numpy_mlp_saves_no_nan_weights(tmp_path):
    # numpy_mlp.npz was written full of NaN before metrics.json's check refused the run, after NumPy's
    # "invalid value encountered in matmul" warning and its source line
    import warnings

    from llmkit.errors import UserError
    from llmkit.recipes import train_mlp

    rng = np.random.default_rng(0)
    data = tmp_path / "huge.npz"
    np.savez(data, x_train=rng.normal(size=(60, 2, 2)) * 1e150, y_train=np.arange(60) % 3)
    argv = ["--impl", "numpy", "--num_train_epochs", "3", "--hidden", "8", "--dataset", str(data)]
    with warnings.catch_warnings(), pytest.raises(UserError, match=r"at epoch 1 the NumPy MLP's loss is nan"):
        warnings.simplefilter("error")
        train_mlp.main([*argv, "--output_dir", str(tmp_path / "run")])
    assert not (tmp_path / "run" / "numpy_mlp.npz").exists()
