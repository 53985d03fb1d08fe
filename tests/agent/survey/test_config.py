"""``[survey]``: prefixes that do not parse are refused when the config loads, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config
from protocol.configfile import ConfigError
from protocol.survey import parse_networks


def _config(tmp_path: Path, survey: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'agent_id = "a"\nsite = "s"\n[survey]\n{survey}\n', encoding="utf-8")
    return path


def test_the_allowed_prefixes_and_opt_outs_load(tmp_path: Path) -> None:
    config = load_config(
        _config(tmp_path, 'allowed_prefixes = ["203.0.112.0/22"]\nopt_out = ["203.0.113.9"]')
    )
    assert config.survey.allowed() == parse_networks("203.0.112.0/22")
    assert config.survey.opted_out() == parse_networks("203.0.113.9/32")


@pytest.mark.parametrize(
    ("survey", "key"),
    [('allowed_prefixes = ["10.0.0.1/24"]', "allowed_prefixes"), ('opt_out = ["x"]', "opt_out")],
)
def test_a_prefix_that_does_not_parse_is_a_config_error(
    tmp_path: Path, survey: str, key: str
) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config(_config(tmp_path, survey))
