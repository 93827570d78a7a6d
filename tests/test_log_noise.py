"""Library messages a user cannot act on stay out of a run's output."""

import logging

from llmkit.log import quiet_known_noise


def test_transformers_checkpoint_ordering_note_is_dropped(caplog):
    # a resumed run with checkpoints saved within one second printed "[transformers] mtime may not be reliable on
    # this filesystem, falling back to numerical ordering"
    quiet_known_noise()
    source = logging.getLogger("transformers.trainer_utils")
    with caplog.at_level(logging.WARNING, logger="transformers.trainer_utils"):
        source.warning("mtime may not be reliable on this filesystem, falling back to numerical ordering")
        source.warning("a message that matters")
    assert [r.getMessage() for r in caplog.records] == ["a message that matters"]
