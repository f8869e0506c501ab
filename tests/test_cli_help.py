"""Every command documents itself: `voicecoach COMMAND --help` exits 0 with text."""

from __future__ import annotations

import pytest

from conftest import voicecoach
from voicecoach.cli import build_parser

COMMANDS = sorted(build_parser().get_default("commands"))


def test_the_command_list_is_known():
    assert {"run", "stop", "devices", "doctor", "remind", "button"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: voicecoach {command}") and "exit codes:" in out


def test_top_level_help_through_the_real_command(user_env):
    r = voicecoach("--help", env=user_env)
    assert r.returncode == 0 and all(c in r.stdout for c in COMMANDS)


def test_engine_choices_match_the_engines_module() -> None:
    from voicecoach import cli
    from voicecoach.hearing import engines
    assert cli.ENGINES == engines.ENGINES
