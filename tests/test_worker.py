"""The spotter in its own process hears exactly what the in-process spotter hears."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicecoach.audio import FRAME, read_wav
from voicecoach.devices import MicrophoneLost
from voicecoach.hearing.engines import make_spotter
from voicecoach.hearing.words import Keyword, default_keywords, spot_file
from voicecoach.hearing.worker import ProcessSpotter

STOP = Path(__file__).parent / "data" / "speech" / "listening" / "stop-439c84f4_nohash_1.wav"


def stream(spotter, samples: np.ndarray) -> list:
    found = []
    for i in range(0, len(samples), FRAME):
        found += spotter.process(samples[i:i + FRAME])
    return found


def test_process_spotter_finds_what_the_in_process_spotter_finds() -> None:
    expected = list(spot_file(STOP, make_spotter(default_keywords())))
    spotter = ProcessSpotter(default_keywords())
    try:
        audio = np.concatenate([read_wav(STOP), np.zeros(16000, np.int16)])
        found = stream(spotter, audio)
        for _ in range(300):                         # detections arrive asynchronously
            if found:
                break
            found += spotter.process(np.zeros(FRAME, np.int16))
        assert [(d.word, d.action, round(d.t, 2)) for d in found] == \
            [(d.word, d.action, round(d.t, 2)) for d in expected]
        spotter.reset()                              # a reset is heard: stream time restarts
        again = stream(spotter, audio)
        for _ in range(300):
            if again:
                break
            again += spotter.process(np.zeros(FRAME, np.int16))
        assert [round(d.t, 2) for d in again] == [round(d.t, 2) for d in expected]
    finally:
        spotter.close()


def test_a_bad_vocabulary_is_one_clear_error() -> None:
    spotter = ProcessSpotter([Keyword("zzqxv", "stop")])
    with pytest.raises(ValueError, match="zzqxv"):
        spotter.wait_ready()


def test_a_dead_spotter_process_is_a_lost_microphone() -> None:
    spotter = ProcessSpotter([Keyword("stop", "stop")])
    spotter.wait_ready()
    spotter._proc.kill()
    spotter._proc.wait()
    with pytest.raises(MicrophoneLost, match="keyword spotter stopped"):
        for _ in range(100):
            spotter.process(np.zeros(FRAME, np.int16))
    spotter.close()
