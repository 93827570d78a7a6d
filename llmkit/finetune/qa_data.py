"""SQuAD-format question answering data: the official nested JSON, flat JSONL rows, a Hub dataset, or the built-in set.

Every source becomes rows `{id, title, context, question, answers: {text: [...], answer_start: [...]}}`, the layout of
the Hub's `squad` and `squad_v2`; an unanswerable question (SQuAD v2) has empty `text` and `answer_start` lists.
Each row is checked before anything trains: an answer_start that does not point at its answer text, a question
without an answers field, missing columns and empty files are refused with the file and the question's id.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path

from datasets import Dataset, DatasetDict

from llmkit.data.corpus import expand_files, load_source
from llmkit.errors import UserError
from llmkit.finetune.data import FinetuneDataArguments
from llmkit.log import get_logger

logger = get_logger(__name__)

COLUMNS = ["id", "title", "context", "question", "answers"]
LAYOUT = (
    "the official SQuAD JSON ({'data': [{'title', 'paragraphs': [{'context', 'qas': [...]}]}]}) or JSONL rows "
    "{id, title, context, question, answers: {text: [...], answer_start: [...]}}"
)


def read_squad_file(path: str | Path) -> list[dict]:
    """Rows of a local file: the nested SQuAD JSON (v1 or v2), or flat rows as JSONL or a JSON list."""
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise UserError(f"{path} is empty; give it questions in {LAYOUT}.")
    if path.suffix.lower() == ".jsonl":
        return [_json_line(path, n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if text.lstrip().startswith("{") and "\n{" in text.strip():  # JSON lines in a .json file
            return [_json_line(path, n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        raise UserError(f"{path} is not valid JSON ({err}); give {LAYOUT}.") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return _flatten(path, data["data"])
    if isinstance(data, list):
        return data
    raise UserError(f"{path} holds neither a 'data' list nor a list of rows; give {LAYOUT}.")


def _json_line(path: Path, number: int, line: str) -> dict:
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise UserError(f"{path} line {number} is not valid JSON ({err}).") from None


def _flatten(path: Path, articles: list) -> list[dict]:
    """The official nested layout -> flat rows; a question must say its answers (or `is_impossible` with [])."""
    rows = []
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            if "context" not in paragraph or "qas" not in paragraph:
                raise UserError(
                    f"{path}: paragraph {p + 1} of article {a + 1} has no 'context' or no 'qas'; give {LAYOUT}."
                )
            for q, qa in enumerate(paragraph["qas"]):
                qid = str(qa.get("id", f"{a + 1}-{p + 1}-{q + 1}"))
                if "answers" not in qa:
                    raise UserError(
                        f"{path}: question {qid!r} has no 'answers' field; give its answers, or "
                        "'answers': [] with 'is_impossible': true for a question the context does not answer."
                    )
                if not qa["answers"] and not qa.get("is_impossible"):
                    # SQuAD marks a question without an answer as impossible; an empty list alone is a slip,
                    # and taking it for "no answer" would quietly turn on v2 training for the whole run.
                    raise UserError(
                        f"{path}: question {qid!r} has 'answers': [] but is not marked 'is_impossible': true; "
                        "give its answers, or set 'is_impossible': true if the context does not answer it."
                    )
                answers = [] if qa.get("is_impossible") else qa["answers"]
                rows.append(
                    {
                        "id": qid,
                        "title": article.get("title", ""),
                        "context": paragraph["context"],
                        "question": qa.get("question"),
                        "answers": {
                            "text": [x.get("text") for x in answers],
                            "answer_start": [x.get("answer_start") for x in answers],
                        },
                    }
                )
    return rows


def check_rows(rows: Iterable[dict], where: str) -> list[dict]:
    """Complete each row (id, title) and refuse missing columns and answers that are not where they claim to be.

    Answers are scored by question id, so a repeated id (two files without ids in one folder, a hand-made file)
    gets its row number appended: otherwise every question with that id was scored with one's answer."""
    out, seen, repeated = [], set(), []
    for n, row in enumerate(rows, 1):
        missing = [c for c in ("context", "question", "answers") if c not in row]
        if missing:
            raise UserError(f"{where} row {n} has no {missing} column(s); give {LAYOUT}.")
        qid = str(row.get("id") if row.get("id") is not None else n)
        if qid in seen:
            repeated.append(qid)
            qid = f"{qid}#{n}"
        seen.add(qid)
        answers = row["answers"]
        if not isinstance(answers, dict) or not {"text", "answer_start"} <= set(answers):
            raise UserError(
                f"{where}: question {qid!r} has answers {answers!r}; give "
                "{'text': [...], 'answer_start': [...]} (empty lists for an unanswerable question)."
            )
        texts, starts, context = answers["text"], answers["answer_start"], row["context"] or ""
        if len(texts) != len(starts):
            raise UserError(
                f"{where}: question {qid!r} has {len(texts)} answer texts but {len(starts)} starts."
            )
        for text, start in zip(texts, starts):
            if not isinstance(text, str) or not text.strip():  # "not in the context" was said of '', untrue
                raise UserError(
                    f"{where}: question {qid!r} has the answer text {text!r}; give the answer's words, or empty "
                    "lists for an unanswerable question."
                )
            if not isinstance(start, int) or context[start : start + len(text)] != text:
                found = context.find(text)
                fix = f" (the text is at {found})" if found >= 0 else " (the text is not in the context)"
                raise UserError(
                    f"{where}: question {qid!r}: answer {text!r} is not at answer_start {start}{fix}; "
                    "answer_start is the answer's character offset in its context."
                )
        if not str(row["question"] or "").strip() or not context.strip():
            raise UserError(f"{where}: question {qid!r} has an empty question or context.")
        out.append(
            {
                "id": qid,
                "title": str(row.get("title") or ""),
                "context": context,
                "question": row["question"],
                "answers": {"text": list(texts), "answer_start": list(starts)},
            }
        )
    if not out:
        raise UserError(f"{where} has no questions; give it some in {LAYOUT}.")
    if repeated:
        logger.warning(
            f"{where}: {len(repeated)} question(s) reuse the id of an earlier one (first: {repeated[0]!r}); "
            "each is scored on its own under its id and row number ('id#row')."
        )
    return out


def split_by_context(rows: list[dict], percentage: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out whole contexts, so no validation passage is ever seen in training."""
    contexts = sorted({r["context"] for r in rows})
    random.Random(seed).shuffle(contexts)
    held = set(contexts[: max(1, round(len(contexts) * percentage / 100))])
    if len(held) == len(contexts):
        raise UserError(
            "every question shares one context, so none can be held out; give a --validation_file."
        )
    return [r for r in rows if r["context"] not in held], [r for r in rows if r["context"] in held]


def load_qa(args: FinetuneDataArguments, builtin, seed: int = 42) -> DatasetDict:
    """{"train", "validation"} (+ "test" with --test_file) of checked SQuAD rows; `builtin()` gives (train, validation)."""
    if args.dataset_name and args.train_file:
        raise UserError("pass either --dataset_name or --train_file, not both.")
    if (args.validation_file or args.test_file) and not args.train_file:
        raise UserError("--validation_file and --test_file go with --train_file.")
    splits: dict[str, list[dict]] = {}
    if args.dataset_name:
        hub = load_source(args.dataset_name, args.dataset_config_name)
        for name in ("train", "validation", "test"):
            if name in hub:
                splits[name] = check_rows(hub[name], f"{args.dataset_name} ({name} split)")
        if "train" not in splits:
            raise UserError(f"{args.dataset_name} has no 'train' split (it has: {', '.join(hub)}).")
    elif args.train_file:
        for name, path in (
            ("train", args.train_file),
            ("validation", args.validation_file),
            ("test", args.test_file),
        ):
            if path:
                files = expand_files([path], f"--{name}_file")
                splits[name] = check_rows([r for f in files for r in read_squad_file(f)], path)
    else:
        splits["train"], splits["validation"] = builtin()
    if "validation" not in splits:
        splits["train"], splits["validation"] = split_by_context(
            splits["train"], args.validation_split_percentage, seed
        )
    if args.max_train_samples:
        splits["train"] = splits["train"][: args.max_train_samples]
    if args.max_eval_samples:
        splits["validation"] = splits["validation"][: args.max_eval_samples]
    return DatasetDict({name: Dataset.from_list(rows) for name, rows in splits.items()})


def has_unanswerable(data: DatasetDict) -> bool:
    """Whether any question has no answer (SQuAD v2 data)."""
    return any(not a["text"] for split in data.values() for a in split["answers"])
