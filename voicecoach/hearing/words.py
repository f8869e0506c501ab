"""What every hearing engine shares: the words to hear, what a detection is, the Spotter protocol."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Protocol, Tuple, Union

import numpy as np

from voicecoach.audio import FRAME, RATE, wav_blocks

ACTIONS = ("safety", "stop", "pause", "resume", "repeat")
"""What a spoken word can do, in priority order."""
DEFAULT_WORDS: Dict[str, Tuple[str, ...]] = {
    "safety": ("pain", "painful", "hurts", "numb", "numbness", "tingling", "pins and needles"),
    "stop": ("stop",), "pause": ("pause", "wait"), "resume": ("resume", "continue"),
    "repeat": ("repeat",)}
"""The words a session listens for unless its routine lists its own, by action."""
FLUSH_SECONDS = 0.5


@dataclass(frozen=True)
class Keyword:
    """A phrase to hear and what it means; sensitivity 0..1 overrides the tuned default."""

    phrase: str
    action: str
    sensitivity: float | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; expected one of {ACTIONS}")
        if self.sensitivity is not None and not 0.0 <= self.sensitivity <= 1.0:
            raise ValueError(f"sensitivity {self.sensitivity} outside 0..1")


@dataclass(frozen=True)
class Detection:
    """A heard keyword; times are stream seconds since the spotter's start or reset."""

    word: str
    action: str
    t: float
    start: float
    score: float


class Spotter(Protocol):
    """Pure object: int16 16 kHz mono frames of any length in, detections out."""

    def process(self, frame: np.ndarray) -> list[Detection]: ...

    def reset(self) -> None: ...


def whole_frames(pending: np.ndarray, audio: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Audio left over from last time plus new audio, as whole 10 ms frames and a new
    remainder: every engine decodes whole frames, so how audio is chunked never matters."""
    data = np.concatenate([pending, np.asarray(audio, dtype=np.int16).ravel()])
    usable = len(data) - len(data) % FRAME
    return [data[i:i + FRAME] for i in range(0, usable, FRAME)], data[usable:]


def default_keywords() -> list[Keyword]:
    """The vocabulary a stretching session listens for."""
    return [Keyword(p, action) for action, phrases in DEFAULT_WORDS.items() for p in phrases]


def file_frames(path: Union[str, Path]) -> Iterator[np.ndarray]:
    """A WAV (any rate/channels) in 10 ms frames as a microphone gives them, then the silence
    that flushes a word said at its very end."""
    rest = np.zeros(0, np.int16)
    for block in wav_blocks(path):
        audio = np.concatenate([rest, block])
        whole = len(audio) // FRAME * FRAME
        for i in range(0, whole, FRAME):
            yield audio[i:i + FRAME]
        rest = audio[whole:]
    audio = np.concatenate([rest, np.zeros(int(FLUSH_SECONDS * RATE), dtype=np.int16)])
    for i in range(0, len(audio), FRAME):
        yield audio[i:i + FRAME]


def spot_file(path: Union[str, Path], spotter: Spotter) -> Iterator[Detection]:
    """Stream a WAV through `spotter` exactly as live audio, then flush."""
    for frame in file_frames(path):
        yield from spotter.process(frame)
