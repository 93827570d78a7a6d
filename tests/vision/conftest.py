"""Generated digit canvases for the image recipes: three well-separated classes, small enough to train in seconds."""

import pytest

from llmkit.vision.synthetic import write_image_folders


@pytest.fixture(scope="session")
def canvases(tmp_path_factory):
    """train/ and test/ class folders of the digits 0, 1 and 4 (60 and 15 canvases per class)."""
    root = tmp_path_factory.mktemp("canvases")
    return write_image_folders(root, train_per_class=60, test_per_class=15, digits=(0, 1, 4), seed=7)
