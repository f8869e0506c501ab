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


@pytest.mark.sphinx
def test_every_engine_the_command_line_offers_builds_a_spotter() -> None:
    """--engine's choices come from hearing.ENGINES: each must build a spotter that hears frames."""
    import numpy as np
    from voicecoach.audio import FRAME
    from voicecoach.hearing import ENGINES
    from voicecoach.hearing.engines import make_spotter
    from voicecoach.hearing.words import default_keywords
    for engine in ENGINES:
        spotter = make_spotter(default_keywords(), engine)
        assert list(spotter.process(np.zeros(FRAME * 10, dtype=np.int16))) == [], engine
    with pytest.raises(ValueError, match="unknown engine"):
        make_spotter(default_keywords(), "whisper")
