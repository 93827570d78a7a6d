"""API documentation: a docstring's field descriptions are quotable sentences headed by their field's name."""

from llmkit.docfields import fields
from llmkit.rag import RAG, Document, Store
from llmkit.rag.abstain import Gate
from llmkit.rag.selection import expected_type, selection_bonus
from llmkit.sentences import answer_units, headings, split_sentences, unit_text

NUMPYDOC = """Blend two images.

Parameters
----------
alpha : float, optional, default: 0.5
    Weight of the first image. Values outside [0, 1] extrapolate.
mode : {'linear', 'gamma'}
    How the pixels are combined. Defaults to 'linear'.

Raises
------
ShapeError
    If the two images differ in size.

See Also
--------
mix_many : Blend a list of images at once.
"""

GOOGLE = """Resize an image.

Args:
    size (int): the length of the longer side after resizing.
        Must be positive.
    keep_ratio: whether the other side follows the same scale.

Shape:
    - Input: an image of any size with three channels.
"""

SPHINX = """Open a file.

:param path: where the file lives on the disk.
:raises OSError: when the file cannot be opened.
"""


def test_numpydoc_descriptions_are_sentences_and_entries_head_them():
    sentences = split_sentences(NUMPYDOC)
    assert "Weight of the first image." in sentences
    assert "If the two images differ in size." in sentences
    # an entry line is a heading, not a sentence; a See Also pointer answers nothing
    assert not any(s.startswith(("alpha :", "mode :", "mix_many")) for s in sentences)
    assert [t for _, t in headings(NUMPYDOC)][:6] == [
        "Parameters",
        "alpha",
        "mode",
        "Raises",
        "ShapeError",
        "See Also",
    ]


def test_a_field_s_first_sentence_is_quoted_with_its_entry_and_a_short_one_with_the_sentence_before():
    quoted = {u.kind: [] for u in answer_units(NUMPYDOC)}
    for u in answer_units(NUMPYDOC):
        quoted[u.kind].append(unit_text(NUMPYDOC, u))
    assert "alpha : float, optional, default: 0.5 Weight of the first image." in quoted["field"]
    assert "How the pixels are combined. Defaults to 'linear'." in quoted["antecedent"]
    assert "ShapeError If the two images differ in size." in quoted["field"]


def test_google_and_sphinx_fields():
    assert "the length of the longer side after resizing." in split_sentences(GOOGLE)
    assert "Must be positive." in split_sentences(GOOGLE)
    assert "Input: an image of any size with three channels." in split_sentences(GOOGLE)
    assert "Args:" not in split_sentences(GOOGLE)
    google = fields(GOOGLE.splitlines())
    assert sorted(google.entries.values()) == ["Args", "Shape", "keep_ratio", "size"]
    sphinx = fields(SPHINX.splitlines())
    assert sorted(sphinx.entries.values()) == ["OSError", "path"]
    assert "when the file cannot be opened." in split_sentences(SPHINX)


def test_plain_prose_and_code_are_untouched():
    text = "Intro sentence here.\n\n    indented_code(x)\n\nReturns:\nnothing at all here.\n"
    assert split_sentences(text) == ["Intro sentence here.", "Returns: nothing at all here."]


def test_questions_about_a_default_or_a_method_want_the_sentence_that_gives_it():
    assert expected_type("What is the default mode of blend?").search("Defaults to 'linear'.")
    way = expected_type("How is the determinant computed?")
    bonus = selection_bonus(
        "How is the determinant computed?",
        ["Compute the determinant of an array.", "The determinant is computed via LU factorization."],
    )
    assert way.search("via LU") and bonus[1] > bonus[0]


def test_the_default_asked_for_is_quoted_from_the_docstring(tmp_path, embedder):
    store = Store(tmp_path / "store", embedder=embedder)
    store.add_documents([Document("blend", NUMPYDOC, {"source": "blend", "title": "blend"})])
    answer = RAG(store, k=1, gate=Gate(0.0)).ask("What is the default alpha of blend?")
    assert "default: 0.5" in answer.citations[0].sentence
