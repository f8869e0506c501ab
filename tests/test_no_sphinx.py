"""Without pocketsphinx (left out on a 32-bit OS by scripts/install): the default words are still
heard, and every path that would need it says so in one message with exit 6, no traceback.

Where pocketsphinx is installed (x86, arm64) its absence is made real for the processes these
tests start: a package of that name first on PYTHONPATH that fails to import, as a missing one
does. On armhf (scripts/test-arm) it is really absent and the shadow changes nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict

import pytest

from conftest import DATA, voicecoach
from voicecoach.hearing import EngineMissing
from voicecoach.hearing.words import Keyword, default_keywords

STOP = DATA / "speech" / "listening" / "stop-439c84f4_nohash_1.wav"
CRAMP = "name: Cramp\nsetup: [Ready.]\nsides: [left]\nhold_seconds: 3\nrounds: 1\nlisten:\n  safety: [cramp]\n"


@pytest.fixture
def no_sphinx(tmp_path: Path, user_env: Dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Dict[str, str]:
    """The environment of a user without pocketsphinx, for this process's children."""
    shadow = tmp_path / "shadow" / "pocketsphinx"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("No module named \'pocketsphinx\'")\n')
    path = os.pathsep.join(p for p in (str(shadow.parent), user_env.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    return {**user_env, "PYTHONPATH": path}


def missing_message(result) -> None:
    assert result.returncode == 6, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert "pocketsphinx, which is not installed here" in result.stderr
    assert "VOICECOACH_EXTRAS=sphinx scripts/install" in result.stderr


def test_the_default_words_are_heard_without_it(no_sphinx: Dict[str, str]) -> None:
    result = voicecoach("listen", "--file", str(STOP), env=no_sphinx)
    assert result.returncode == 0, result.stderr
    assert '"word": "stop"' in result.stdout
    result = voicecoach("check", str(DATA / "routines" / "three-rounds.yaml"), env=no_sphinx)
    assert result.returncode == 0, result.stderr


def test_check_says_which_words_need_it(no_sphinx: Dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "cramp.yaml").write_text(CRAMP)
    result = voicecoach("check", str(tmp_path / "cramp.yaml"), env=no_sphinx)
    missing_message(result)
    assert "the words cramp need pocketsphinx" in result.stderr


def test_listen_with_the_pocketsphinx_engine_says_it_is_missing(no_sphinx: Dict[str, str]) -> None:
    missing_message(voicecoach("listen", "--engine", "pocketsphinx", "--file", str(STOP), env=no_sphinx))


def test_a_session_with_words_of_its_own_says_it_is_missing(no_sphinx: Dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "cramp.yaml").write_text(CRAMP)
    result = voicecoach("run", str(tmp_path / "cramp.yaml"), "--mic-file", str(STOP),
                        "--speaker-file", str(tmp_path / "out.wav"), "--db", str(tmp_path / "h.db"), env=no_sphinx)
    missing_message(result)


def test_the_live_spotter_process_says_it_is_missing(no_sphinx: Dict[str, str]) -> None:
    """A live session's spotter runs in a child process: its reason comes back as EngineMissing."""
    from voicecoach.hearing.worker import ProcessSpotter
    spotter = ProcessSpotter([Keyword("cramp", "safety")])
    with pytest.raises(EngineMissing, match="the words cramp need pocketsphinx"):
        spotter.wait_ready()
    spotter = ProcessSpotter(default_keywords())   # the default words: the learned spotter, no pocketsphinx
    try:
        spotter.wait_ready()
    finally:
        spotter.close()


def test_debians_old_pocketsphinx_counts_as_missing(user_env: Dict[str, str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A 32-bit Pi's venv sees Debian's packages, and python3-pocketsphinx there is 0.1.15, whose
    API is not the one voicecoach uses: it must get the one message, not a traceback. Laid out as
    Debian installs it (a package and its egg-info), first on the path."""
    site = tmp_path / "dist-packages"
    (site / "pocketsphinx").mkdir(parents=True)
    (site / "pocketsphinx" / "__init__.py").write_text("class Decoder:\n    def __init__(self, config=None):\n"
                                                       "        raise TypeError('0.1 wants a Config')\n")
    (site / "pocketsphinx-0.1.15.egg-info").mkdir()
    (site / "pocketsphinx-0.1.15.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 1.1\nName: pocketsphinx\nVersion: 0.1.15\n")
    path = os.pathsep.join(p for p in (str(site), user_env.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    (tmp_path / "cramp.yaml").write_text(CRAMP)
    missing_message(voicecoach("check", str(tmp_path / "cramp.yaml"), env={**user_env, "PYTHONPATH": path}))
