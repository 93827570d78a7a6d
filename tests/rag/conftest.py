"""Session fixtures: the packaged embedder and a store of the topic corpus of tests/rag/helpers.py."""

import warnings

import pytest

from llmkit.rag import Embedder, Store
from tests.rag.helpers import topic_documents


@pytest.fixture(scope="session")
def embedder():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the offline fallback to the packaged MiniLM warns once
        return Embedder()


@pytest.fixture(scope="session")
def topic_store(tmp_path_factory, embedder):
    store = Store(tmp_path_factory.mktemp("topics"), embedder=embedder)
    store.add_documents(topic_documents())
    return store
