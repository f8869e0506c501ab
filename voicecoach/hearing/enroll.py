"""Enrolment: the person's own voice, a few takes of each safety word, recorded once at set-up.

The learned spotter is trained on other voices; for this person it can score their "pain" just
under its threshold. Their own takes confirm such a grey-zone candidate: the last second of
log-mel is compared with each take by subsequence DTW (free start, end near the window's end),
and the word is accepted when the distance is within what the takes showed among themselves.
The file holds voice templates (biometric, health data): 0600 in a 0700 directory, no network.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from voicecoach.audio import RATE, rms_dbfs
from voicecoach.hearing.dtw import MIN_PEAK_DB, QUIET_DB, energy_db, match_end, prepare
from voicecoach.hearing.features import BANDS, FLOOR, logmel
from voicecoach.hearing.learned import CONTEXT
from voicecoach.paths import enrollment_file, private_dirs

MARGIN = 1.4        # accept distance = MARGIN x the median leave-one-out distance of the takes
MIN_TAKES = 2
VERSION = 1


class EnrollmentError(Exception):
    """The enrolment file cannot be read (damaged, or not a voicecoach enrolment)."""


def speech_span(feats: np.ndarray) -> Tuple[int, int]:
    """First and one-past-last frame of speech: 10 dB over the floor (5th percentile), but
    20-30 dB under the peak whatever the floor (tightly cut files have none to measure)."""
    e = energy_db(feats)
    peak = float(e.max())
    loud = np.flatnonzero(e >= np.clip(np.percentile(e, 5) + 10, peak - 30, peak - 20))
    return max(int(loud[0]) - 1, 0), min(int(loud[-1]) + 2, len(e))


@dataclass(frozen=True)
class Enrollment:
    """Each phrase's takes (log-mel of the word, float32) and its accept distance."""

    templates: Dict[str, Tuple[np.ndarray, ...]]
    thresholds: Dict[str, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_prepared", {})

    def distances(self, phrase: str, windows: np.ndarray) -> np.ndarray:
        """distance() of a batch of windows (B, frames, BANDS); inf for a phrase not enrolled."""
        if phrase not in self.templates:
            return np.full(len(windows), np.inf)
        if phrase not in self._prepared:
            self._prepared[phrase] = prepare(self.templates[phrase])
        return match_end(*self._prepared[phrase], np.asarray(windows))

    def distance(self, phrase: str, window: np.ndarray) -> float:
        """Smallest DTW distance of any take of `phrase` matching the end of `window`
        (frames, BANDS; newest last): ends in the last 0.25 s, starts anywhere."""
        return float(self.distances(phrase, np.asarray(window)[None])[0])

    def matches(self, phrase: str, window: np.ndarray) -> bool:
        """Whether the window ends with this person saying `phrase`."""
        return phrase in self.thresholds and self.distance(phrase, window) <= self.thresholds[phrase]

    def save(self, path) -> None:
        """Atomically, owner-only (0600) in an owner-only (0700) directory."""
        path = Path(path)
        private_dirs(path.parent)
        arrays = {"version": np.array(VERSION), "phrases": np.array(list(self.templates)),
                  "thresholds": np.array([self.thresholds[p] for p in self.templates])}
        for i, takes in enumerate(self.templates.values()):
            arrays.update({f"take_{i}_{k}": np.asarray(t, np.float32) for k, t in enumerate(takes)})
        fd, name = tempfile.mkstemp(prefix=".enrollment-", dir=path.parent)   # 0600 by mkstemp
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)           # a crash mid-write leaves the old enrolment whole
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path) -> "Enrollment":
        """Read a saved enrolment; EnrollmentError if it is damaged (FileNotFoundError if absent)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["version"]) != VERSION:
                    raise ValueError(f"version {int(data['version'])}, expected {VERSION}")
                phrases = [str(p) for p in data["phrases"]]
                thresholds = dict(zip(phrases, (float(t) for t in data["thresholds"])))
                templates = {p: tuple(data[f"take_{i}_{k}"].astype(np.float32) for k in range(sum(
                    f.startswith(f"take_{i}_") for f in data.files))) for i, p in enumerate(phrases)}
            for p, takes in templates.items():
                if (not takes or any(t.ndim != 2 or t.shape[1] != BANDS or len(t) < 2 for t in takes)
                        or not math.isfinite(thresholds[p])):
                    raise ValueError(f"damaged takes of {p!r}")
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as exc:
            raise EnrollmentError(f"{path}: cannot read the voice enrolment ({exc}); record it again "
                                  "with `voicecoach enroll` (or remove it with --forget)") from None
        return cls(templates, thresholds)


def load_enrollment(path: Optional[Path] = None) -> Optional[Enrollment]:
    """The saved enrolment, None when there is none; EnrollmentError when it is damaged."""
    try:
        return Enrollment.load(path or enrollment_file())
    except FileNotFoundError:
        return None


def save_enrollment(new: Enrollment, path: Path) -> str:
    """Save `new`, keeping the other words of an enrolment already at `path` (enrolling one word
    again keeps the rest); a note for the person of what was kept or replaced."""
    try:
        old = load_enrollment(path)
    except EnrollmentError:
        new.save(path)
        return " (it replaces a damaged one)"
    kept = [p for p in old.templates if p not in new.templates] if old else []
    if kept:
        new = Enrollment({**{p: old.templates[p] for p in kept}, **new.templates},
                         {**{p: old.thresholds[p] for p in kept}, **new.thresholds})
    new.save(path)
    return f" (kept {', '.join(kept)})" if kept else ""


def _threshold(loo: Sequence[float]) -> float:
    """Accept distance from the leave-one-out distances of a phrase's takes."""
    return MARGIN * float(np.median(loo))


def enroll(takes: Dict[str, List[np.ndarray]]) -> Enrollment:
    """Templates from int16 16 kHz takes, and each phrase's accept distance from the takes.

    Each take is trimmed to the word by energy (speech_span). Threshold: each take in turn is
    left out and matched against the others in the windows the live spotter holds as the word
    ends (every 30 ms; the best counts); MARGIN (1.4) times the median of these distances is
    accepted. From the takes, because voices, words and microphones differ in how much one
    person's repetitions vary; the median, so one odd take cannot open the gate wide; the
    margin, because takes said one after the other vary less than the word said another day
    (what it accepts: docs/benchmarks.md, Enrolment). ValueError when a take has no speech or
    the takes do not match each other."""
    templates: Dict[str, Tuple[np.ndarray, ...]] = {}
    thresholds: Dict[str, float] = {}
    pad = np.zeros(RATE * 3 // 10, np.int16)          # tightly cut files: silence around the word
    silence = np.full((CONTEXT, BANDS), np.log(FLOOR), np.float32)
    for phrase, audio in takes.items():
        if len(audio) < MIN_TAKES:
            raise ValueError(f"{phrase!r}: {len(audio)} take(s); at least {MIN_TAKES} are needed")
        feats = [logmel(np.concatenate([pad, np.asarray(a, np.int16), pad])).astype(np.float32) for a in audio]
        words, windows = [], []
        for k, f in enumerate(feats):
            energy = energy_db(f)
            lo, hi = speech_span(f)
            if hi - lo < 10 or energy.max() < MIN_PEAK_DB:
                raise ValueError(f"{phrase!r} take {k + 1}: no speech found")
            end = int(np.flatnonzero(energy > energy.max() - QUIET_DB)[-1]) + 1
            words.append(f[lo:hi])
            padded = np.concatenate([silence, f])
            windows.append(np.stack([padded[e:e + CONTEXT] for e in range(end + 5, min(end + 30, len(f) + 1), 3)]))
        templates[phrase] = tuple(words)
        loo = [Enrollment({phrase: templates[phrase][:k] + templates[phrase][k + 1:]}, {}
                          ).distances(phrase, w).min() for k, w in enumerate(windows)]
        if sum(np.isfinite(loo)) < 2:
            raise ValueError(f"the takes of {phrase!r} do not match each other: record them again, "
                             "saying the word the same way each time")
        thresholds[phrase] = _threshold([d for d in loo if np.isfinite(d)])
    return Enrollment(templates, thresholds)


# -- live takes ------------------------------------------------------------------------------

class NoSpeech(Exception):
    """No word was heard for a take, even when asked again."""


def record_take(mic, room_db: float, timeout: float = 6.0) -> Optional[np.ndarray]:
    """One word from the microphone: from 0.3 s before it starts (12 dB over the room for
    30 ms) to 0.4 s after it ends (0.5 s back near the room's level); None when nothing
    starts within `timeout` seconds. Times count audio frames, so a file stands in for a mic."""
    frames: List[np.ndarray] = []
    start = quiet = loud = 0
    while True:
        for _, frame in mic.frames(time.monotonic()):
            frames.append(frame)
            level = rms_dbfs(frame)
            loud = loud + 1 if level > room_db + 12 else 0
            if not start and loud >= 3:
                start = len(frames)
            quiet = quiet + 1 if level < room_db + 6 else 0
            n = len(frames)
            if start and (quiet >= 50 or n - start > 300):
                return np.concatenate(frames[max(start - 33, 0):n - 10])
            if not start and n >= timeout * 100:
                return None
        time.sleep(0.01)


def record_takes(mic, phrases: Sequence[str], n: int, out: TextIO, tries: int = 3
                 ) -> Dict[str, List[np.ndarray]]:
    """Prompt for and record `n` takes of each phrase; a take with no speech is asked again
    (`tries` times in all), then NoSpeech."""
    frames: List[np.ndarray] = []
    while len(frames) < 50:                           # 0.5 s of the room before the first prompt
        frames += [f for _, f in mic.frames(time.monotonic())]
        time.sleep(0.01)
    room = max(float(np.percentile([rms_dbfs(f) for f in frames], 20)), -75.0)   # no room is silent
    takes: Dict[str, List[np.ndarray]] = {p: [] for p in phrases}
    for phrase in phrases:
        for k in range(n):
            for attempt in range(tries):
                print(f"Say '{phrase}' (take {k + 1} of {n})" + (" again" if attempt else ""), file=out, flush=True)
                take = record_take(mic, room)
                if take is not None:
                    takes[phrase].append(take)
                    break
                print("  heard nothing", file=out, flush=True)
            else:
                raise NoSpeech(f"heard nothing for {phrase!r} (take {k + 1}) {tries} times: check the "
                               "microphone with `voicecoach doctor`, then enrol again")
    return takes
