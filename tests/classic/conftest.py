"""A digits CNN and the generative models trained once: judged by tests, read by the app's tests, and the CNN
the judge of generative models' samples."""

import pytest


@pytest.fixture(scope="session")
def cnn_dir(tmp_path_factory):
    from llmkit.recipes import train_cnn

    out = tmp_path_factory.mktemp("cnn")
    metrics = train_cnn.main(["--output_dir", str(out), "--num_train_epochs", "8", "--learning_rate", "3e-3"])
    return out, metrics


@pytest.fixture(scope="session")
def generative_runs(tmp_path_factory, cnn_dir) -> dict:
    """The GAN, VAE and diffusion recipes trained 2 epochs each, judged by the CNN: {recipe: (folder, metrics)}."""
    from llmkit.recipes import train_diffusion, train_gan, train_vae

    runs = {}
    for recipe in (train_gan, train_vae, train_diffusion):
        out = tmp_path_factory.mktemp(recipe.__name__.rsplit(".", 1)[-1])
        argv = ["--output_dir", str(out), "--num_train_epochs", "2", "--judge", str(cnn_dir[0])]
        runs[recipe] = out, recipe.main(argv)
    return runs
