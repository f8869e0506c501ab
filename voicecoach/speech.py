"""Speech clips rendered offline with pyttsx3 (espeak-ng), cached on disk, plus the earcons.

Everything a session says is rendered before it starts (`Voice.render_all`), so playback only
copies int16 arrays and a "pain" interruption can cut a clip at any sample; estimated word
times tell the coach which word it is saying at each instant.

pyttsx3 facts this module is built on (measured with pyttsx3 2.99 / espeak-ng 1.51):
- the espeak driver runs in espeak's asynchronous RETRIEVAL mode: `runAndWait()` returns
  before the file is written (~10 ms), so we wait for the `finished-utterance` callback, which
  arrives on espeak's thread after the WAV is closed; reading earlier gives the previous file;
- only the last utterance queued before `runAndWait()` is produced: one per run;
- the driver prints "Audio saved to …" on stdout, which is voicecoach's machine channel;
- there is one espeak instance per process, so settings are re-applied on every render.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import hashlib
import importlib.metadata
import importlib.resources
import io
import json
import math
import os
import re
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional

import numpy as np

from voicecoach.audio import FRAME, RATE, read_wav
from voicecoach.paths import speech_cache
from voicecoach.routine import MAX_HOLD_SECONDS

FORMAT_VERSION = 2
"""Bump when the stored clip format or the processing changes, to orphan old cache files
(2: clips resampled to 16 kHz by the band-limited resampler, not linear interpolation)."""
DEFAULT_RATE = 200
"""What pyttsx3's espeak driver sets at init (its getProperty("rate") reports 175 regardless)."""
MIN_RATE, MAX_RATE = 80, 450
"""espeak clamps below 80 wpm; above 450 words blur, so we time-compress instead."""
FIT_MARGIN = 0.97
"""Fitted clips aim a little under max_seconds so rounding never overruns a slot."""

Words = tuple[tuple[str, float, float], ...]


class SpeechEngineMissing(RuntimeError):
    """pyttsx3 or the espeak-ng library is not installed, so nothing can be rendered."""


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays make field equality ambiguous
class Clip:
    """A rendered phrase: int16 samples at 16 kHz mono, trimmed, with estimated word times."""

    text: str
    samples: np.ndarray
    words: Words

    @property
    def duration(self) -> float:
        return len(self.samples) / RATE


@dataclass(frozen=True)
class VoiceSettings:
    voice: Optional[str] = None  # pyttsx3 voice id or name substring; None = engine default
    rate: Optional[int] = None  # words per minute; None = engine default (DEFAULT_RATE)
    volume: float = 1.0  # 0..1


_ENGINE_LOCK = threading.Lock()
"""espeak is one process-wide instance with one callback: renders must not interleave."""
_ENGINE: Any = None
_DEFAULT_VOICE: Optional[str] = None
_FINISHED = threading.Event()


def _engine() -> Any:
    """Create (once per process) the pyttsx3 engine, translating a missing espeak-ng."""
    global _ENGINE, _DEFAULT_VOICE
    if _ENGINE is None:
        try:
            import pyttsx3
        except ImportError as exc:
            raise SpeechEngineMissing("pyttsx3 is not installed: pip install pyttsx3") from exc
        try:
            engine = pyttsx3.init()
        except (OSError, RuntimeError, ImportError) as exc:
            raise SpeechEngineMissing(
                "espeak-ng is not installed: sudo apt-get install espeak-ng libespeak-ng1"
            ) from exc
        _DEFAULT_VOICE = engine.getProperty("voice")  # before anyone changes it
        engine.connect("finished-utterance", lambda **_: _FINISHED.set())
        _ENGINE = engine
        atexit.register(_release_engine)
    return _ENGINE


def _release_engine() -> None:
    """Drop the engine while modules still exist: pyttsx3's __del__ fails at interpreter exit."""
    global _ENGINE
    _ENGINE = None
    gc.collect()


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence stdout (Python object and fd 1) while pyttsx3 prints from espeak's thread."""
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _engine_versions() -> str:
    """Identify the synthesizer for cache keys without initializing espeak."""
    try:
        pyttsx3_version = importlib.metadata.version("pyttsx3")
    except importlib.metadata.PackageNotFoundError:
        pyttsx3_version = "missing"
    try:
        from pyttsx3.drivers import _espeak

        espeak_version = _espeak.Info().decode()
    except (ImportError, RuntimeError, OSError):
        espeak_version = "missing"
    return f"pyttsx3 {pyttsx3_version}; espeak-ng {espeak_version}"


def _apply_settings(voice: Optional[str], rate: int, volume: float) -> None:
    """Set espeak's voice/rate/volume and wait until espeak has taken them in.

    Why not engine.setProperty(): its commands run inside the next runAndWait(), where they
    keep espeak busy at the moment pyttsx3's endLoop() checks IsPlaying() and calls Cancel();
    that utterance then comes out empty (or with the old settings) while the callback still
    reports completed=True — measured ~1 render in 500 under load. Setting them through the
    driver's own static setProperty and waiting for espeak to be idle closes that race.
    """
    from pyttsx3.drivers import _espeak
    from pyttsx3.drivers.espeak import EspeakDriver

    EspeakDriver.setProperty("voice", voice)
    EspeakDriver.setProperty("rate", rate)
    EspeakDriver.setProperty("volume", volume)
    deadline = time.monotonic() + 2.0
    while _espeak.IsPlaying() and time.monotonic() < deadline:
        time.sleep(0.001)


def list_voices() -> list[tuple[str, str, list[str]]]:
    """(id, name, languages) of every installed voice, for `voicecoach voices`."""
    with _ENGINE_LOCK:
        return [(v.id, v.name, list(v.languages or [])) for v in _engine().getProperty("voices")]


class Voice:
    """Renders phrases with fixed voice settings, through a bounded on-disk cache."""

    def __init__(
        self,
        settings: VoiceSettings = VoiceSettings(),
        cache_dir: Optional[Path] = None,
        max_cache_bytes: int = 64 * 2**20,
    ) -> None:
        self.settings = settings
        self.rate = min(max(settings.rate or DEFAULT_RATE, MIN_RATE), MAX_RATE)
        self.cache_dir = Path(cache_dir) if cache_dir else speech_cache()
        self.max_cache_bytes = max_cache_bytes
        self.engine: Any = None  # created on the first cache miss only: init costs time
        self._versions = _engine_versions()

    def render(self, text: str, max_seconds: Optional[float] = None) -> Clip:
        """Cached. A clip longer than max_seconds is re-rendered faster, then time-compressed,
        so that e.g. a count never overruns its one-second slot."""
        clip = self._cached(text, self.rate)
        if max_seconds is None or clip.duration <= max_seconds:
            return clip
        faster = min(MAX_RATE, math.ceil(self.rate * clip.duration / (max_seconds * FIT_MARGIN)))
        if faster > self.rate:
            clip = self._cached(text, faster)
        if clip.duration > max_seconds:
            clip = _compress(clip, max_seconds * FIT_MARGIN)
        return clip

    def render_all(
        self, texts: Iterable[str], max_seconds: Optional[Mapping[str, float]] = None
    ) -> dict[str, Clip]:
        """Render everything a session can say before it starts (one engine for the batch)."""
        limits = max_seconds or {}
        return {text: self.render(text, limits.get(text)) for text in dict.fromkeys(texts)}

    # -- cache -------------------------------------------------------------------------------

    def _key(self, text: str, rate: int) -> str:
        fields = [FORMAT_VERSION, text, self.settings.voice, rate, self.settings.volume]
        blob = json.dumps(fields + [self._versions]).encode()
        return hashlib.sha256(blob).hexdigest()[:32]

    def _cached(self, text: str, rate: int) -> Clip:
        path = self.cache_dir / f"{self._key(text, rate)}.npz"
        clip = _load(path, text)
        if clip is None:
            clip = self._synthesize(text, rate)
            self._store(path, clip)
        return clip

    def _store(self, path: Path, clip: Clip) -> None:
        """Atomic write (tmp + os.replace) so concurrent sessions never see a partial file."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(
                    f,
                    samples=clip.samples,
                    names=np.array([w for w, _, _ in clip.words], dtype=str),
                    times=np.array([(a, b) for _, a, b in clip.words], dtype=float).reshape(-1, 2),
                )
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._evict(keep=path)

    def _evict(self, keep: Path) -> None:
        """Delete least-recently-used clips (mtime, touched on read) beyond max_cache_bytes."""
        entries = []
        for p in self.cache_dir.glob("*.npz"):
            with contextlib.suppress(FileNotFoundError):  # another session may evict too
                st = p.stat()
                entries.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in entries)
        for _, size, p in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_cache_bytes:
                break
            if p != keep:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                total -= size

    # -- synthesis ---------------------------------------------------------------------------

    def _synthesize(self, text: str, rate: int) -> Clip:
        """pyttsx3 save_to_file, one utterance per runAndWait, completion from the callback."""
        if not text.strip():
            raise ValueError("cannot render empty text")
        with _ENGINE_LOCK, tempfile.TemporaryDirectory() as tmp:
            self.engine = self.engine or _engine()
            wav = Path(tmp) / "utterance.wav"
            _apply_settings(self.settings.voice or _DEFAULT_VOICE, rate, self.settings.volume)
            _FINISHED.clear()
            with _quiet_stdout():
                self.engine.save_to_file(text, str(wav))
                self.engine.runAndWait()
                finished = _FINISHED.wait(timeout=10 + 0.2 * len(text))
            if not finished or not wav.exists():
                raise RuntimeError(f"pyttsx3 did not finish rendering {text!r}")
            samples = _trim(read_wav(wav))
        if len(samples) == 0:
            raise RuntimeError(f"pyttsx3 rendered silence for {text!r}")
        return Clip(text, _frozen(samples), _estimate_words(text, samples))


def _load(path: Path, text: str) -> Optional[Clip]:
    """A cached clip, or None if absent or unreadable (a corrupt file is deleted)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            samples, names, times = data["samples"], data["names"], data["times"]
        if samples.dtype != np.int16 or samples.ndim != 1 or len(names) != len(times):
            raise ValueError("unexpected clip layout")
        os.utime(path)  # least-recently-used eviction goes by mtime
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    words = tuple((str(n), float(a), float(b)) for n, (a, b) in zip(names, times))
    return Clip(text, _frozen(samples), words)


def _frozen(samples: np.ndarray) -> np.ndarray:
    """Clips are shared between callers and the cache: make accidental edits an error."""
    samples = np.ascontiguousarray(samples, dtype=np.int16)
    samples.setflags(write=False)
    return samples


# -- signal processing ---------------------------------------------------------------------


def _voiced(samples: np.ndarray) -> np.ndarray:
    """10 ms frames within 35 dB of the loudest one and above -55 dBFS: speech, not tail."""
    n = len(samples) // FRAME
    frames = samples[: n * FRAME].astype(np.float64).reshape(n, FRAME)
    levels = 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) / 32768 + 1e-6)
    if len(levels) == 0:
        return np.zeros(0, dtype=bool)
    return levels > max(levels.max() - 35, -55)


def _trim(samples: np.ndarray, keep: float = 0.010, fade: float = 0.005) -> np.ndarray:
    """Cut leading/trailing silence (keeping ~10 ms) and fade the edges to avoid clicks."""
    idx = np.flatnonzero(_voiced(samples))
    if len(idx) == 0:
        return samples[:0]
    pad = int(keep * RATE)
    start, end = max(idx[0] * FRAME - pad, 0), min((idx[-1] + 1) * FRAME + pad, len(samples))
    out = samples[start:end].astype(np.float64)
    n = min(int(fade * RATE), len(out) // 2)
    ramp = np.linspace(0.0, 1.0, n, endpoint=False)
    out[:n] *= ramp
    out[len(out) - n :] *= ramp[::-1]
    return np.round(out).astype(np.int16)


def _compress(clip: Clip, seconds: float) -> Clip:
    """Shorten a clip to `seconds` keeping its pitch (WSOLA), scaling its word times."""
    factor = seconds / clip.duration
    x = clip.samples.astype(np.float64)
    win, tol = 480, 120  # 30 ms windows, ±7.5 ms search for the best-matching continuation
    hop = win // 2
    window = np.hanning(win)
    n_out = int(len(x) * factor)
    xp = np.concatenate([np.zeros(tol), x, np.zeros(win + tol + int(hop / factor) + 1)])
    out, norm = np.zeros(n_out + win), np.zeros(n_out + win)
    pos = tol  # input position (in xp) of the previous segment
    for k, out_pos in enumerate(range(0, n_out, hop)):
        target = tol + int(out_pos / factor)
        if k:
            natural = xp[pos + hop : pos + hop + win]
            region = xp[target - tol : target + tol + win]
            corr = np.correlate(region, natural, mode="valid")
            target = target - tol + int(np.argmax(corr))
        pos = target
        out[out_pos : out_pos + win] += xp[pos : pos + win] * window
        norm[out_pos : out_pos + win] += window
    y = out[:n_out] / np.maximum(norm[:n_out], 1e-3)
    words = tuple((w, float(a * factor), float(b * factor)) for w, a, b in clip.words)
    samples = _trim(np.clip(np.round(y), -32768, 32767).astype(np.int16), keep=1.0)
    return Clip(clip.text, _frozen(samples), words)


def _words_of(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def _weight(word: str) -> float:
    """Rough spoken length: syllables (vowel groups) plus a little per letter."""
    if word.isdigit():
        return 1.5 * len(word)
    return max(1, len(re.findall(r"[aeiouy]+", word))) + 0.15 * len(word)


def _estimate_words(text: str, samples: np.ndarray) -> Words:
    """Word times, good to ~100 ms (pyttsx3 does not expose espeak's word positions).

    espeak pauses at punctuation, so clauses are first matched to the longest silences;
    within a clause, words share its voiced frames in proportion to their weight, each
    boundary snapped to a pause within 100 ms."""
    words = _words_of(text)
    voiced = _voiced(samples)
    idx = np.flatnonzero(voiced)
    if not words or len(idx) == 0:
        return tuple((w, 0.0, len(samples) / RATE) for w in words)
    edges = np.diff(voiced.astype(int))
    pauses = [  # interior unvoiced runs as (first, past-last) frame
        (int(a), int(b))
        for a, b in zip(np.flatnonzero(edges == -1) + 1, np.flatnonzero(edges == 1) + 1)
        if idx[0] < a < b <= idx[-1]
    ]
    clauses = [c for c in (_words_of(part) for part in re.split(r"[,.;:!?]+", text)) if c]
    cuts = sorted(sorted(pauses, key=lambda p: p[0] - p[1])[: len(clauses) - 1])
    if len(cuts) != len(clauses) - 1:
        clauses, cuts = [words], []
    bounds = [int(idx[0])] + [x for cut in cuts for x in cut] + [int(idx[-1]) + 1]
    out: list[tuple[str, float, float]] = []
    for clause, start, end in zip(clauses, bounds[::2], bounds[1::2]):
        inner = [p for p in pauses if start < p[0] and p[1] <= end]
        out += _spread(clause, voiced, start, end, inner)
    return tuple(out)


def _spread(
    words: list[str], voiced: np.ndarray, start: int, end: int, pauses: list[tuple[int, int]]
) -> list[tuple[str, float, float]]:
    """Place words over voiced frames [start, end) by weight, snapping boundaries to pauses."""
    idx = start + np.flatnonzero(voiced[start:end])
    if len(idx) == 0:
        idx = np.arange(start, max(end, start + 1))
    cum = np.cumsum([0.0] + [_weight(w) for w in words])
    cum /= cum[-1]
    starts, ends = [start], []
    for frac in cum[1:-1]:
        j = int(idx[min(int(round(frac * len(idx))), len(idx) - 1)])
        near = [p for p in pauses if p[0] - 10 <= j <= p[1] + 10 and p[0] >= starts[-1]]
        a, b = min(near, key=lambda p: abs((p[0] + p[1]) / 2 - j)) if near else (j, j)
        a = max(a, starts[-1])
        pauses = [p for p in pauses if p[0] > a]
        ends.append(a)
        starts.append(max(b, a))
    ends.append(end)
    secs = FRAME / RATE
    return [(w, float(s * secs), float(e * secs)) for w, s, e in zip(words, starts, ends)]


# -- numbers and earcons -------------------------------------------------------------------

_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _spell(n: int) -> str:
    if n < 20:
        return _UNITS[n]
    if n < 100:
        return _TENS[n // 10] + ("-" + _UNITS[n % 10] if n % 10 else "")
    rest = n % 100
    return f"{_UNITS[n // 100]} hundred" + (f" {_spell(rest)}" if rest else "")


def count_words(n: int) -> list[str]:
    """Spelled-out counts 1..n ("one", …, "twenty-one", "one hundred five"), n at most the
    longest hold: numbers are spoken as words, and short forms (no "and") fit the one-second slot."""
    if not 0 <= n <= MAX_HOLD_SECONDS:
        raise ValueError(f"count out of range 0..{MAX_HOLD_SECONDS}: {n}")
    return [_spell(i) for i in range(1, n + 1)]


EARCONS = ("start", "hold", "done", "alert")


def earcon(name: str) -> np.ndarray:
    """An earcon (int16, 16 kHz mono): package data voicecoach.earcons, the repo's audio/."""
    if name not in EARCONS:
        raise ValueError(f"unknown earcon {name!r}; expected one of {EARCONS}")
    with importlib.resources.as_file(importlib.resources.files("voicecoach.earcons") / f"{name}.wav") as path:
        return read_wav(path)
