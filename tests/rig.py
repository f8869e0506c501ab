"""Fault injection, kept out of the product: `voicecoach` whose devices fail on cue.

`python tests/rig.py [--mic-fail-at S] [--speaker-fail-at S] run ...` is the real command line
(voicecoach.cli.main) with its opened devices wrapped, through the one seam the product offers
for it (`cli.main(argv, wrap=...)`, no flag): the microphone is lost, or the speaker stops
working, at session time S.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from voicecoach import cli
from voicecoach.audio import FRAME, RATE
from voicecoach.devices import DeviceError, Microphone, MicrophoneLost, Speaker, TimedFrame

REPO = Path(__file__).resolve().parent.parent


class FailingSpeaker:
    """A speaker that stops working once `at` seconds have been written to it."""

    def __init__(self, inner: Speaker, at: float) -> None:
        self.inner, self.at, self._written = inner, at, 0

    def write(self, frame: np.ndarray) -> None:
        if self._written * FRAME >= self.at * RATE:
            raise DeviceError("speaker stopped working (simulated failure)")
        self._written += 1
        self.inner.write(frame)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


class FailingMicrophone:
    """A microphone that is lost at session time `at`."""

    def __init__(self, inner: Microphone, at: float) -> None:
        self.inner, self.at = inner, at

    def frames(self, until: float) -> List[TimedFrame]:
        frames = self.inner.frames(until)
        if any(t >= self.at for t, _ in frames):
            raise MicrophoneLost("microphone stopped delivering audio (simulated failure)")
        return frames

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def faults(mic_at: Optional[float], speaker_at: Optional[float]):
    """The wrap for cli.main: each device fails at its time (None: never)."""
    def wrap(speaker: Speaker, mic: Optional[Microphone]) -> Tuple[Speaker, Optional[Microphone]]:
        if speaker_at is not None:
            speaker = FailingSpeaker(speaker, speaker_at)  # type: ignore[assignment]
        if mic is not None and mic_at is not None:
            mic = FailingMicrophone(mic, mic_at)  # type: ignore[assignment]
        return speaker, mic
    return wrap


def voicecoach_with_faults(*args: str, env: Dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Like conftest.voicecoach, through this rig: args may include --mic-fail-at/--speaker-fail-at."""
    return subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)   # --mic is not --mic-fail-at
    parser.add_argument("--mic-fail-at", type=float)
    parser.add_argument("--speaker-fail-at", type=float)
    known, rest = parser.parse_known_args(argv)
    return cli.main(rest, wrap=faults(known.mic_fail_at, known.speaker_fail_at))


if __name__ == "__main__":
    sys.exit(main())
