"""JSON training files with a malformed line get llmkit's one line and nothing else."""

import json
import logging

from tests.finetune.test_inputs import TRAIN, _fails


class _Kept(logging.Handler):
    """Keeps what the `datasets` JSON loader logs."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_a_malformed_line_is_named_by_llmkit_alone(tmp_path, capsys):
    # datasets logged "Failed to load JSON from file '...' with error ...: JSON parse error" before llmkit's line
    lines = [json.dumps(r) for r in TRAIN * 3]
    lines[20] = "not json at all"
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    kept, source = _Kept(), logging.getLogger("datasets.packaged_modules.json.json")
    source.addHandler(kept)
    try:
        err = _fails(
            ["--train_file", str(tmp_path / "bad.jsonl"), "--output_dir", str(tmp_path / "o")], capsys
        )
    finally:
        source.removeHandler(kept)
    assert "bad.jsonl:21: malformed JSON" in err and not kept.messages, kept.messages
