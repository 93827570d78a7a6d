"""A hyperparameter search is a run too: killed, it goes on where it stopped; run with other flags, it says so."""

import json

import pytest

from llmkit.errors import UserError
from tests.helpers import FAST_TRAINING, TINY_MODEL, run_pretrain

SEARCH = [
    *TINY_MODEL,
    *FAST_TRAINING,
    "--max_steps",
    "4",
    "--eval_steps",
    "2",
    "--save_steps",
    "1000",
    "--hp_search_trials",
    "3",
]


def test_a_killed_search_runs_only_the_trials_it_lacks_and_refuses_other_flags(tmp_path, monkeypatch, capfd):
    from transformers import Trainer

    out = tmp_path / "search"
    train, calls = Trainer.train, []

    def killed_in_the_second_trial(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit("killed")
        return train(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train", killed_in_the_second_trial)
    with pytest.raises(SystemExit):
        run_pretrain([*SEARCH, "--output_dir", str(out)])
    monkeypatch.setattr(Trainer, "train", train)
    # the search started over from trial 0: every trial before the kill was lost
    best = run_pretrain([*SEARCH, "--output_dir", str(out)])
    assert "continuing the search" in capfd.readouterr().err  # trial 0 done; trial 1 was cut
    trials = json.loads((out / "hp_search" / "trials.json").read_text())["trials"]
    finished = [t for t in trials if t["state"] in ("COMPLETE", "PRUNED")]
    assert len(finished) == 3 and [t["state"] for t in trials].count("FAIL") == 1
    assert best["value"] == min(t["value"] for t in trials if t["state"] == "COMPLETE")

    # the same search's trials at another --max_steps would not compare: say so, leave the search as it is
    with pytest.raises(UserError, match=r"other settings \(config\.max_steps differ\)"):
        run_pretrain([*SEARCH, "--output_dir", str(out), "--max_steps", "6"])
    assert json.loads((out / "hp_search" / "trials.json").read_text())["trials"] == trials
