"""The unit an answer quotes (llmkit.sentences.answer_units) and the signals that rank it (llmkit.rag.selection)."""

from llmkit.rag import RAG, Document, Store
from llmkit.rag.abstain import Gate
from llmkit.rag.selection import expected_type, selection_bonus, subject_stems
from llmkit.sentences import answer_units, headings, sentence_spans, split_sentences, unit_text

ASSERT_DOC = (
    'The "assert" statement\n**********************\n\n'
    'The simple form, "assert expression", is equivalent to\n\n'
    "   if __debug__:\n       if not expression: raise AssertionError\n\n"
    "These equivalences assume that the built-in names are not rebound.\n"
)


def _quoted(text: str, kind: str) -> list[str]:
    return [" ".join(text[u.start : u.end].split()) for u in answer_units(text) if u.kind == kind]


def test_a_sentence_is_quoted_with_the_code_block_it_announces():
    assert _quoted(ASSERT_DOC, "code") == [
        'The simple form, "assert expression", is equivalent to if __debug__: if not expression: raise AssertionError'
    ]
    # the code's own lines are no unit of their own; the sentence after the block is
    quoted = [" ".join(ASSERT_DOC[u.start : u.end].split()) for u in answer_units(ASSERT_DOC)]
    assert not any(q.startswith("if __debug__") for q in quoted) and quoted[-1].startswith(
        "These equivalences"
    )


def test_a_colon_before_an_indented_list_or_a_sentence_that_ends_is_no_code_announcement():
    listed = "It has three fields:\n\n    - name\n    - size\n    - date\n"
    ended = "The function returns a list.\n\n    >>> f()\n    []\n"
    assert _quoted(listed, "code") == [] and _quoted(ended, "code") == []
    fenced = "Install it with this command:\n```\npip install llmkit\n```\n"
    code = next(u for u in answer_units(fenced) if u.kind == "code")
    assert unit_text(fenced, code) == "Install it with this command: pip install llmkit"  # no fence marks


def test_a_sentence_is_quoted_with_the_first_items_of_the_list_it_announces():
    text = (
        "``dill`` cannot yet pickle these standard types:\n\n    - frame, generator, traceback\n\n"
        "Besides, it can also:\n\n- save sessions\n- load sessions\n- extract source code\n- diagnose errors\n"
    )
    assert _quoted(text, "list") == [
        "``dill`` cannot yet pickle these standard types: - frame, generator, traceback",
        "Besides, it can also: - save sessions - load sessions - extract source code",  # three items at most
    ]
    # the items stay units of their own: one of them may be the answer
    assert "diagnose errors" in [unit_text(text, u) for u in answer_units(text)]


def test_a_sentence_right_before_a_markdown_code_fence_is_a_sentence_not_a_heading():
    assert split_sentences("Install it with this command:\n```\npip install llmkit\n```\n") == [
        "Install it with this command:"
    ]
    assert split_sentences("Usage\n=====\n\nCall it once.") == ["Call it once."]  # a real underline


def test_a_sentence_that_refers_back_is_quoted_with_the_sentence_before_it():
    text = (
        '"break" may only occur nested in a loop.\n\nIt terminates the nearest enclosing loop.\n\n'
        "The most popular face detector is Viola-Jones. The faces were extracted by this detector.\n\n"
        "# Heading\n\nIt stands alone after a heading.\n"
    )
    assert _quoted(text, "antecedent") == [
        '"break" may only occur nested in a loop. It terminates the nearest enclosing loop.',
        "The most popular face detector is Viola-Jones. The faces were extracted by this detector.",
    ]
    antecedent = next(u for u in answer_units(text) if u.kind == "antecedent")
    assert text[antecedent.core[0] : antecedent.core[1]] == "It terminates the nearest enclosing loop."


def test_an_indented_prose_paragraph_is_quoted_but_indented_code_is_not():
    text = (
        "As described on the original website:\n\n"
        "    There are ten different images of each of 40 distinct subjects. For some\n"
        "    subjects, the images were taken at different times.\n\n"
        "Example::\n\n    The loader returns ten images of each subject.\n\n"
        "Or run:\n\n    data = load(subject=40)\n    print(data.shape)\n"
    )
    assert _quoted(text, "quote") == [
        "There are ten different images of each of 40 distinct subjects.",
        "For some subjects, the images were taken at different times.",
    ]
    # plain sentence splitting (QA data, calibration probes) is unchanged: indented text is left out
    assert all(not text[a:b].startswith("There are") for a, b in sentence_spans(text))


def test_words_naming_the_source_count_as_covered_by_each_of_its_sentences():
    sentences = ['"break" may only occur in a loop.', "It terminates the nearest enclosing loop."]
    plain = selection_bonus("Which loop does a break statement terminate?", sentences)
    named = selection_bonus(
        "Which loop does a break statement terminate?", sentences, subjects=[subject_stems("pydoc/break")] * 2
    )
    assert plain[1] < plain[0] or plain[1] == max(plain)
    assert named[1] > named[0] and all(n >= p for n, p in zip(named, plain))
    assert subject_stems("docs/twenty_newsgroups.rst", "Newsgroups") == {"twent", "newsg"}


def test_the_kind_of_answer_a_question_asks_for():
    def best(question, sentences):
        bonus = selection_bonus(question, sentences)
        return sentences[bonus.index(max(bonus))]

    assert best(
        "How often is x evaluated?", ['"x += 1" is like "x = x + 1".', "Here x is evaluated once."]
    ).endswith("once.")
    assert "third" in best(
        "What share of people died?", ["It began in 1347.", "It killed one third of people."]
    )
    assert "NameError" in best(
        "What exception is raised?", ["A name is looked up.", "A NameError is raised."]
    )
    assert expected_type("When does a loop run its else clause?").search("if the test is false")
    assert expected_type("When was the tower completed?").search("in 1874")
    # a number counting what the question counts beats another number
    assert best(
        "How many cover types are there?",
        ["Patches of 30 metres are the samples of each type.", "There are seven covertypes in all."],
    ).startswith("There are seven")
    # a default's value beats a sentence that only names the default; a signature states one too
    assert "is False" in best(
        "Does it accept lowercase letters by default?",
        [
            "The default alphabet is the uppercase one defined by RFC 4648.",
            "For security, the default is False.",
        ],
    )
    assert best(
        "What is the default maxsize of the cache?",
        ["If maxsize is None, the cache grows without bound.", "cache(maxsize=128, typed=False) A cache."],
    ).startswith("cache(maxsize=128")


def test_a_sentence_whose_condition_matches_the_question_s_is_preferred():
    sentences = [
        "Deletion of a name removes its binding from the namespace.",
        "If the name is unbound, a NameError exception will be raised.",
    ]
    bonus = selection_bonus("What happens when you delete a name that is not bound?", sentences)
    assert bonus[1] > bonus[0]


def test_the_quoted_unit_is_cited_and_highlighted_and_extra_units_leave_the_evidence_alone(
    tmp_path, embedder
):
    text = (
        "# Olivetti faces\n\nThe dataset holds face images taken at a laboratory in Cambridge.\n\n"
        "As described on the original website:\n\n"
        "    There are ten different images of each of 40 distinct subjects, taken at different times.\n"
    )
    store = Store(tmp_path / "store", embedder=embedder)
    store.add_documents([Document("olivetti_faces.md", text, {"source": "olivetti_faces.md"})])
    answer = RAG(store, k=1, gate=Gate(0.0)).ask("How many distinct subjects are in the Olivetti faces?")
    citation = answer.citations[0]
    assert "40 distinct subjects" in citation.sentence and citation.to_dict()["sentence"] == citation.sentence
    assert " ".join(citation.hit.text[citation.start : citation.end].split()) == citation.sentence
    quoted = next(s for s in answer.evidence.sentences if "40 distinct" in s.text)
    assert not quoted.evidence  # an indented passage is quotable, but the gate's evidence is as before
    counted = [s.score for s in answer.evidence.sentences if s.evidence]
    assert answer.evidence.score == (answer.evidence.chunk_score + max(counted)) / 2


def test_headings_name_the_subject_of_the_sentences_under_them():
    text = (
        "# Tools\n\nSome intro.\n\ncopystat(src, dst, *, follow_symlinks=True)\n\nCopy the permission bits.\n\n"
        "Usage notes\n-----------\n\nCall it once.\n"
    )
    assert [title for _, title in headings(text)] == ["Tools", "copystat", "Usage notes"]
    assert headings("    indented(x)\n\nNot a heading(y) when text follows\nhere.\n") == []


def test_the_heading_a_sentence_sits_under_counts_as_covered(tmp_path, embedder):
    text = (
        "# Files\n\ncopyfile(src, dst)\n\nCopy data from src to dst in the most efficient way possible.\n\n"
        "copystat(src, dst)\n\nCopy the permission bits and the last access time from src to dst.\n"
    )
    store = Store(tmp_path / "store", embedder=embedder)
    store.add_documents([Document("files.md", text, {"source": "files.md"})])
    answer = RAG(store, k=1, gate=Gate(0.0)).ask("What does copystat copy from src to dst?")
    bonus = {s.text.split()[1]: s.rank - s.score for s in answer.evidence.sentences}
    assert bonus["the"] > bonus["data"]  # "copystat" is covered under its heading only


def test_a_cost_in_big_o_notation_answers_how_long():
    bonus = selection_bonus("How long does heapify take?", ["It works in place.", "It runs in O(n) time."])
    assert bonus[1] > bonus[0]


def test_a_source_far_from_the_best_chunk_is_read_when_one_of_its_sentences_is_close(tmp_path, embedder):
    garden = " ".join(
        f"Bed {i} of the kitchen garden grows {crop}, watered at dawn and mulched with straw in autumn."
        for i, crop in enumerate("leeks onions beans kale carrots squash peas beets".split())
    )
    docs = [
        Document(
            "garden", garden + " The lighthouse lamp is replaced every two years.", {"source": "garden"}
        ),
        Document(
            "lighthouse",
            "The lighthouse lamp shines from a white tower on the northern cape. The lamp of the lighthouse "
            "can be seen from ships far out at sea.",
            {},
        ),
    ]
    store = Store(tmp_path / "store", embedder=embedder, chunk_tokens=256)
    store.add_documents(docs)
    question = "How often is the lighthouse lamp replaced?"
    hits, _ = RAG(store, k=2).retriever.retrieve(question, 2)
    far = next(n for n, h in enumerate(hits, 1) if h.doc_id == "garden")
    relative = 0.7
    # its chunk alone would be dropped: too far below the best one
    assert hits[far - 1].similarity < relative * max(h.similarity for h in hits)
    answer = RAG(store, k=2, gate=Gate(min_score=0.0, relative=relative)).ask(question)
    assert far in answer.evidence.kept
    assert answer.citations[0].sentence == "The lighthouse lamp is replaced every two years."
