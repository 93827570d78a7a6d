"""The small corpus and the dataset `llmkit tokenize` makes of it, shared by the tokenize tests."""

from pathlib import Path

import pytest

from tests.data.helpers import DOCS, tokenize


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for part in range(3):
        (root / f"part{part}.txt").write_text("\n\n".join(DOCS[part::3]))
    return root


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory, corpus_dir) -> Path:
    return tokenize(tmp_path_factory.mktemp("tok") / "ds", corpus_dir)
