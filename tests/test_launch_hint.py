"""The hint for several CPU ranks names a config file that exists, in a clone and from a pip install alike."""

import re

import pytest

from llmkit.errors import UserError
from llmkit.launch import check_launch
from tests.helpers import REPO


def _hinted_config(monkeypatch) -> str:
    # what accelerate 1.15 leaves in the environment when it starts one process for --num_processes 2 on a CPU
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(UserError, match="single process") as err:
        check_launch()
    return re.search(r"--config_file (\S+) ", str(err.value)).group(1)


def test_the_cpu_ddp_hint_names_a_config_that_exists_wherever_it_runs(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    assert _hinted_config(monkeypatch) == "recipes/accelerate/cpu-ddp.yaml"  # as the README writes it
    monkeypatch.chdir(tmp_path)  # a user's folder: no recipes/ beside it
    config = _hinted_config(monkeypatch)
    assert config.endswith("cpu-ddp.yaml") and (tmp_path / config).is_file()
