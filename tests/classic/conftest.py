"""A digits CNN trained once: judged by tests, and the judge of generative models' samples."""

import pytest


@pytest.fixture(scope="session")
def cnn_dir(tmp_path_factory):
    from llmkit.recipes import train_cnn

    out = tmp_path_factory.mktemp("cnn")
    metrics = train_cnn.main(["--output_dir", str(out), "--num_train_epochs", "8", "--learning_rate", "3e-3"])
    return out, metrics
