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


NOTES = """Open a time zone.

.. caution::

    Deprecated. This library fails for dates after 2038.

.. note:: Projects on Python 3.9 should use zoneinfo instead.

.. versionchanged:: 2.1
    The cache is now shared between threads.

.. seealso:: zoneinfo.ZoneInfo

Note:
    When groups equals in_channels, this is called a depthwise convolution.

Example::

    - not: a list item
    tz = timezone("UTC")

SETTINGS:

    * delimiter - a one-character string used to separate
        fields.  It defaults to ','.
    * quotechar - the quoting character.
"""


def test_notes_warnings_and_indented_list_items_are_prose_but_literal_blocks_are_not():
    sentences = split_sentences(NOTES)
    for expected in (
        "This library fails for dates after 2038.",
        "Projects on Python 3.9 should use zoneinfo instead.",
        "The cache is now shared between threads.",
        "When groups equals in_channels, this is called a depthwise convolution.",
        "delimiter - a one-character string used to separate fields.",
        "It defaults to ','.",
        "quotechar - the quoting character.",
    ):
        assert expected in sentences, expected
    # the markers, a version number, a pointer and a literal block's lines are no sentences
    assert not any(
        s.startswith((".. ", "2.1", "zoneinfo.ZoneInfo", "Note:", "not:", "tz =")) for s in sentences
    ), sentences


def test_fields_of_a_chunk_cut_from_the_middle_of_their_section_are_still_fields():
    google = (
        "without its title line.\n"
        "    eps (float, optional): term added to the denominator to improve\n"
        "        numerical stability (default: 1e-8)\n"
        "    weight_decay (float, optional): weight decay coefficient (default: 1e-2)\n"
    )
    numpydoc = "S : (..., K) array\n    The singular values, sorted in\n    descending order.\nVh : array\n    Unitary arrays.\n"
    quoted = [unit_text(google, u) for u in answer_units(google)]
    assert "weight_decay (float, optional): weight decay coefficient (default: 1e-2)" in quoted
    assert not any("1e-8) weight_decay" in q for q in quoted)  # one field is not run into the next
    assert [unit_text(numpydoc, u) for u in answer_units(numpydoc)] == [
        "S : (..., K) array The singular values, sorted in descending order.",
        "Vh : array Unitary arrays.",
    ]
    # a colon inside a sentence with nothing indented under it is no field
    assert split_sentences("The result : a value we keep.") == ["The result : a value we keep."]


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
    assert expected_type("How can the determinant be recovered from the sign?") is None  # a noun, not a way


def test_the_default_asked_for_is_quoted_from_the_docstring(tmp_path, embedder):
    store = Store(tmp_path / "store", embedder=embedder)
    store.add_documents([Document("blend", NUMPYDOC, {"source": "blend", "title": "blend"})])
    answer = RAG(store, k=1, gate=Gate(0.0)).ask("What is the default alpha of blend?")
    assert "default: 0.5" in answer.citations[0].sentence
