"""A person's clip with the coach talking across it: what the spotter hears when someone speaks
while the coach counts and the canceller leaves some of the coach's voice behind. At +10 dB
speaker coupling that residue is about as loud as the person (docs/echo-under-load.md); a head
that only ever heard keywords alone or in a person's own sentence learned that a keyword in the
middle of other speech is not one, and missed a person's "pain" over the counting there
(docs/hearing-data.md). bench/train_head_real.py trains on such clips; bench/hearing_real.py
measures on them.
"""

from __future__ import annotations

import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
import yaml

from voicecoach.audio import read_wav, speech_power

ROOT = Path(__file__).resolve().parents[1]
VOICES = ("en-us", "en", "en+f3", "en+m3", "en-gb-x-rp", "en-us+f2")
"""espeak-ng voices for the coach (it speaks espeak-ng through pyttsx3; a user may pick any)."""
LISTENED = ("pain", "numb", "hurt", "tingl", "pins", "stop", "pause", "wait", "resum", "continu", "repeat")
COUNTS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def lines() -> list:
    """What the coach says that holds no listened-for word: counts and the built-in routine's
    other lines (its safety line says "pain": that is the own-voice discount's business)."""
    routine = yaml.safe_load((ROOT / "voicecoach" / "data" / "hamstring.yaml").read_text())
    said = list(routine["setup"]) + [c.format(side=s) for c in routine["cues"].values() for s in ("left", "right")]
    said += [" ".join(COUNTS[i:i + 3]) for i in range(0, len(COUNTS), 3)]
    return sorted({t for t in said if not any(w in t.lower() for w in LISTENED)})


def bank() -> list:
    """The coach's lines in each of VOICES, at 130-160 words a minute (a few seconds of CPU)."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "c.wav"
        for v, voice in enumerate(VOICES):
            for text in lines():
                subprocess.run(["espeak-ng", "-v", voice, "-s", str(130 + 10 * (v % 4)), "-w", str(wav), text],
                               check=True, capture_output=True)
                out.append(read_wav(wav).astype(np.float64))
    return out


def mix(y: np.ndarray, key: str, coach: list, person_db: tuple) -> np.ndarray:
    """`y` with the coach speaking across all of it (lines joined, from a point drawn by `key`),
    the person `person_db` (a range, dB) louder than the coach's speech."""
    rng = np.random.default_rng(zlib.crc32(("coach" + key).encode()))
    pieces, total = [], 0
    while total < len(y) + 16000:
        piece = coach[int(rng.integers(len(coach)))]
        pieces += [piece, np.zeros(int(rng.uniform(0.05, 0.4) * 16000))]
        total += len(piece)
    joined = np.concatenate(pieces)
    start = int(rng.integers(0, len(joined) - len(y)))
    across = joined[start:start + len(y)]
    x = y.astype(np.float64)
    gain = np.sqrt(speech_power(x) / max(speech_power(across), 1e-9) / 10 ** (rng.uniform(*person_db) / 10))
    return np.clip(x + gain * across, -32768, 32767).astype(np.int16)
