"""The public API (voicecoach.__all__): load a routine, run a session on given devices, read history."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np
import pytest

import voicecoach
from voicecoach.audio import read_wav
from voicecoach.devices import FileMicrophone, FileSpeaker
from voicecoach.routine import RoutineError
from voicecoach.session import Outcome

TINY = """name: Tiny
setup: [Go.]
sides: [left]
hold_seconds: 2
rounds: 1
rest_between_sides: 0
rest_between_rounds: 0
cues: {position: "{side}.", hold: "Hold.", release: "Off.", complete: "Done."}
"""


class ClosedMicrophone(FileMicrophone):
    """A file microphone that remembers being closed."""

    closed = False

    def close(self) -> None:
        self.closed = True


def test_the_api_is_small_and_named() -> None:
    assert set(voicecoach.__all__) == {"load_routine", "run_session", "read_history", "PersonSettings",
                                       "OutputSettings", "__version__"}
    assert all(hasattr(voicecoach, name) for name in voicecoach.__all__)


def test_load_routine_reads_a_file_or_gives_the_built_in(tmp_path: Path) -> None:
    assert voicecoach.load_routine().name.startswith("Hamstring")
    (tmp_path / "tiny.yaml").write_text(TINY)
    assert voicecoach.load_routine(tmp_path / "tiny.yaml").hold_seconds == 2
    (tmp_path / "bad.yaml").write_text(TINY.replace("hold_seconds: 2", "hold_seconds: 0"))
    with pytest.raises(RoutineError, match=r"bad.yaml:4:\d+: hold_seconds"):
        voicecoach.load_routine(tmp_path / "bad.yaml")


def test_a_session_on_file_devices_is_saved_and_read_back(tmp_path: Path, user_env: Dict[str, str]) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY)
    routine = voicecoach.load_routine(tmp_path / "tiny.yaml")
    mic = ClosedMicrophone(None)                                  # silence: nobody speaks
    result = voicecoach.run_session(routine, FileSpeaker(tmp_path / "coach.wav"), mic, live=False,
                                    outputs=voicecoach.OutputSettings(db=tmp_path / "h.db"))
    assert result.outcome is Outcome.COMPLETED and result.rounds == 1 and result.exit_code == 0
    assert mic.closed and np.abs(read_wav(tmp_path / "coach.wav")).max() > 1000   # it spoke
    history = voicecoach.read_history(tmp_path / "h.db")
    try:
        assert [s["outcome"] for s in history.sessions()] == ["completed"] and len(history.rows()) == 1
    finally:
        history.close()


def test_not_listening_still_closes_the_microphone(tmp_path: Path, user_env: Dict[str, str]) -> None:
    mic = ClosedMicrophone(None)
    (tmp_path / "tiny.yaml").write_text(TINY)
    result = voicecoach.run_session(voicecoach.load_routine(tmp_path / "tiny.yaml"), FileSpeaker(None), mic,
                                    person=voicecoach.PersonSettings(listen=False), live=False,
                                    outputs=voicecoach.OutputSettings(db=tmp_path / "h.db"))
    assert result.outcome is Outcome.COMPLETED and mic.closed
