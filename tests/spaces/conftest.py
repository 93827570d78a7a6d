"""Artifacts the Space tests serve: a tiny RAG store and a BERT-family classifier (built once per session)."""

import pytest

from llmkit.rag import Document, Store


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    import warnings

    from llmkit.rag import Embedder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = Store(tmp_path_factory.mktemp("store"), embedder=Embedder())
    s.add_documents(
        [
            Document(
                "kettle.md",
                "Descale the kettle monthly with white vinegar to remove limescale.",
                {"source": "kettle.md"},
            ),
            Document(
                "bike.md",
                "Oil the bicycle chain every few hundred kilometres to stop it rusting.",
                {"source": "bike.md"},
            ),
        ]
    )
    return s.path


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from llmkit.finetune.common import packaged_minilm

    out = tmp_path_factory.mktemp("clf")
    AutoModelForSequenceClassification.from_pretrained(
        packaged_minilm(), num_labels=2, id2label={0: "no", 1: "yes"}, label2id={"no": 0, "yes": 1}
    ).save_pretrained(out)
    AutoTokenizer.from_pretrained(packaged_minilm()).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def space_artifacts(tiny_run, store, classifier_dir, qa_model_dir, image_models) -> dict[str, dict[str, str]]:
    """What each template serves: its `space build` artifacts by flag name."""
    return {
        "rag-chat": {"store": str(store)},
        "text-generation": {"model": str(tiny_run[0])},
        "classifier": {"model": str(classifier_dir)},
        "question-answering": {"model": str(qa_model_dir)},
        "image-classifier": {"model": str(image_models["image-classification"])},
        "detector": {"model": str(image_models["object-detection"])},
        "segmenter": {"model": str(image_models["image-segmentation"])},
        "classic": {},
        "studio": {"model": str(tiny_run[0]), "store": str(store)},
    }
