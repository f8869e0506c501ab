"""Echo cancellation against the played signal: the coach knows exactly what it plays.

The speaker beside the microphone puts the coach's own voice into what it hears, at about the
level of a person. The canceller keeps the last seconds of what was played, tracks the echo's
delay by cross-correlation while the coach speaks (ten times a second), fits a short filter
around that delay, and subtracts the filtered reference from each microphone frame before the
spotter hears it. Through PulseAudio's loopback at 0 dB this removes a median 20-25 dB of
the coach's voice (measured live: docs/benchmarks.md); room reverberation beyond +-0.5 ms is
left to the spotter and to the own-voice discount. For a word the spotter heard while the coach
spoke, it tells how much was left against what it removed (`left_db`): the spotter still
mishears the residue of the coach's voice ("hurts" in its lines), and the coach discounts a
word that was nothing but that.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Deque, Optional, Tuple

import numpy as np

from voicecoach.audio import FRAME, RATE

MAX_DELAY = 0.8
"""Longest echo path searched (s): device buffers plus air."""
LEAD = 0.4
"""How far the microphone's count may run ahead of the speaker's (s) and still be searched: the
two streams are counted apart (the microphone by its own samples, the speaker by the session's),
and an output underrun (the speaker paused, the microphone did not) or frames the coach dropped to
catch up (the speaker skipped ahead) move the echo either way, so on a busy machine it can sit
"before" the sample the coach counted (docs/echo-under-load.md)."""
WINDOW = int(0.4 * RATE)
"""Samples of microphone audio per delay estimate (0.4 s)."""
EVERY = int(0.1 * RATE)
"""How often the delay is estimated anew: a live audio stack's buffers shift the echo's delay
by tens of milliseconds within seconds (measured through PulseAudio), so it is tracked."""
MIN_CORRELATION = 0.5
"""Below this normalized correlation the estimate is not trusted (the person is louder)."""
HALF = 8
"""The echo filter spans the delay +- this many samples (0.5 ms)."""
GAIN_ENOUGH = 10 ** (-30 / 10)
"""One gain is used when it leaves less than this share of the microphone's power (-30 dB)."""
SILENT = 100.0
"""RMS of played audio below which there is no echo worth estimating from."""
ONLY_ECHO_DB = -12.0
"""A word heard while the coach spoke is taken for its echo when what cancellation left over the
word is more than this far under what it removed (online, or with the path refitted over the
word: `_hindsight_db`); a person's word said 10 dB under the coach's echo leaves about -10 dB
and is heard. How the line was drawn: docs/hearing.md."""
OWN_WORD_DB = -6.0
"""The coach's own word (one it was saying then, `coach.is_own_voice`) is discounted only where
what cancellation left over it is at least this far under what it removed: the sound was mostly
its echo. A person's "pain" over the coach's own "pain" is not (about -4 dB at 0 dB coupling,
over 0 dB uncoupled); the coach's own words leave far less (docs/echo-under-load.md). A person
10 dB under the coach's echo saying the word it says (about -10 dB) is still taken for the coach:
+10 dB is the loudest speaker `voicecoach doctor` passes, and there the coach cannot tell."""
CLIPPED = 32000
"""A microphone sample this loud (int16) may be clipped, and no linear echo path predicts a
clipped sample, so the residue there says nothing about who spoke: such samples are left out of
the path's fit and of the residue (a speaker louder than the person clips many: docs/hearing.md)."""
HINDSIGHT_PIECE = int(0.05 * RATE)
"""The hindsight fit's piece: each 50 ms of a word gets its own echo path, and each 10 ms of it
is cancelled by the best of its piece's path and the two nearest others, because on a busy
machine the echo's delay drifts and jumps within a word (the measurements: docs/hearing.md)."""
BLOCK = FRAME // 4
"""The hindsight residue picks the best of its candidate paths for each 2.5 ms of a frame: an
underrun puts a gap in what the speaker played, so the delay jumps within a 10 ms frame, and no
one path cancels both sides of it (docs/echo-under-load.md)."""
RESYNC = int(1.0 * RATE)
"""A live frame's stamp is the wall clock at its read mapped through the coach's session time,
which jitters with the audio stack's bursts and lags while the coach's loop stalls; frames are
counted as one contiguous stream unless a stamp strays this far (a real gap in the input):
re-anchoring on smaller strays moved the echo to a "negative" delay (docs/echo-under-load.md)."""


class Recent:
    """The last `size` samples of a stream, addressed by session sample. Written in place (a
    ring): a 10 ms frame costs its own length, not a copy of seconds of audio."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._buf = np.zeros(size, np.float32)
        self.end: Optional[int] = None          # session sample just after the newest held

    def write(self, start: int, frame: np.ndarray) -> None:
        """`frame` from session sample `start`; a gap since the last frame was silence (frames a
        stalled loop dropped were never played)."""
        if self.end is not None and start > self.end:
            self._put(self.end, np.zeros(min(start - self.end, self.size), np.float32))
        self._put(start, frame)
        self.end = start + len(frame)

    def read(self, begin: int, n: int) -> np.ndarray:
        """Samples [begin, begin + n); zeros where not held."""
        out = np.zeros(n, np.float32)
        if self.end is not None:
            lo, hi = max(begin, self.end - self.size), min(begin + n, self.end)
            if lo < hi:
                out[lo - begin:hi - begin] = np.take(self._buf, np.arange(lo, hi), mode="wrap")
        return out

    def _put(self, start: int, samples: np.ndarray) -> None:
        if len(samples) > self.size:                    # only the last `size` are kept
            start, samples = start + len(samples) - self.size, samples[-self.size:]
        i = start % self.size
        first = min(len(samples), self.size - i)
        self._buf[i:i + first] = samples[:first]
        self._buf[:len(samples) - first] = samples[first:]


def products(rows: np.ndarray, mic: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray, float]]:
    """The least-squares fit's sums (rows'rows, rows'mic, mic'mic), or None where one is not
    finite. Judged by the values, not by the CPU's floating-point flags: OpenBLAS's kernels for
    Arm's SME enter and leave its streaming mode, which by the architecture raises every
    cumulative flag, so numpy reported divide by zero, overflow and invalid value after correct
    products of finite samples (arm64 under qemu's `max` CPU; see docs/pi.md)."""
    with np.errstate(all="ignore"):
        gram, cross, power = rows.T @ rows, rows.T @ mic, float(mic @ mic)
    if not (np.isfinite(gram).all() and np.isfinite(cross).all() and np.isfinite(power)):
        return None
    return gram, cross, power


def only_echo(left_db: Optional[float]) -> bool:
    """Whether a word heard with this residue (`EchoCanceller.left_db`) is the coach's echo alone."""
    return left_db is not None and left_db < ONLY_ECHO_DB


def mostly_echo(left_db: Optional[float]) -> bool:
    """Whether a word heard with this residue is mostly the coach's echo (OWN_WORD_DB): only then
    may the word the coach was saying be discounted. None (nothing it played could be in it) is
    not: a word heard then is the person's."""
    return left_db is not None and left_db < OWN_WORD_DB


class EchoCanceller:
    """Frames of played audio in (`played`), cleaned microphone frames out (`clean`)."""

    def __init__(self, seconds: float = 3.0) -> None:
        self._ref = Recent(int(seconds * RATE))       # the last seconds played
        self._mic = Recent(int(seconds * RATE))       # the last seconds heard, raw
        self._next: Optional[int] = None             # where the next frame starts, if contiguous
        self.counted = 0.0                           # session time the last frame was counted at
        self._since_estimate = 0
        self.model: Optional[Tuple[int, np.ndarray]] = None   # (delay in samples, filter taps)
        self._lock = threading.Lock()
        # per microphone frame: (session sample, power left, power removed as echo)
        self._powers: Deque[Tuple[int, float, float]] = deque(maxlen=int(seconds * RATE) // FRAME)

    def played(self, start: float, frame: np.ndarray) -> None:
        """The speaker played `frame` from session time `start`."""
        with self._lock:
            self._ref.write(int(round(start * RATE)), frame)

    def clean(self, start: float, frame: np.ndarray) -> np.ndarray:
        """The microphone frame heard from session time `start`, without the coach's echo. The
        frame is counted at `counted` (contiguous with the last unless `start` strays by RESYNC):
        word times and `left_db` spans are on that count."""
        stamp = int(round(start * RATE))
        if self._next is None or abs(stamp - self._next) > RESYNC:
            self._next = stamp
        begin, self._next = self._next, self._next + len(frame)
        self.counted = begin / RATE
        self._mic.write(begin, frame)
        self._since_estimate += len(frame)
        if self._since_estimate >= EVERY:
            self._since_estimate = 0
            self._estimate()
        if self.model is None:
            out, echo = frame, np.zeros(len(frame), np.float32)
        else:
            echo = self._echo(self.model, begin, len(frame))
            out = np.clip(frame - echo, -32768, 32767).astype(np.int16)
        heard = np.abs(frame.astype(np.int32)) < CLIPPED
        if heard.any():
            with self._lock:
                self._powers.append((begin, float(np.mean(out[heard].astype(np.float64) ** 2)),
                                     float(np.mean(echo[heard].astype(np.float64) ** 2))))
        return out

    def _echo(self, model: Tuple[int, np.ndarray], begin: int, n: int) -> np.ndarray:
        """The echo `model` predicts in session samples [begin, begin + n)."""
        delay, taps = model
        return np.convolve(self._reference(begin - delay - HALF, n + 2 * HALF), taps, "valid")

    def left_db(self, start: float, end: float) -> Optional[float]:
        """What cancellation left of the microphone from `start` to `end` (session seconds), in dB
        against what it removed as the coach's echo; None if no echo of the coach could be in it
        (silent then and for MAX_DELAY before). The coach's own residue sits far under 0 dB; a
        person's word over its voice near 0 dB."""
        a, b = int(start * RATE), int(end * RATE)
        with self._lock:
            rows = [(left, echo) for at, left, echo in self._powers if a <= at < b]
        if not rows:
            return None
        removed = sum(echo for _, echo in rows)
        online = None
        if removed > len(rows) * SILENT ** 2:
            online = 10 * float(np.log10(max(sum(left for left, _ in rows), 1e-9) / removed))
            if online < ONLY_ECHO_DB:
                return online
        # refitted over the word itself: also where no path was tracked yet (the coach's first
        # words, before the first estimate, which takes as long as the echo's delay and more)
        known = [db for db in (online, self._hindsight_db(a, b)) if db is not None]
        return min(known) if known else None

    def _reference(self, begin: int, n: int) -> np.ndarray:
        """Played samples [begin, begin + n) in session samples; zeros where not held."""
        with self._lock:
            return self._ref.read(begin, n)

    def _estimate(self) -> None:
        end = self._mic.end or 0
        model = self._fit(self._mic.read(end - WINDOW, WINDOW), end)
        if model is not None:
            self.model = model

    def _fit(self, mic: np.ndarray, mic_end: int) -> Optional[Tuple[int, np.ndarray]]:
        """(delay, taps) of the echo in `mic` (ending at session sample `mic_end`), or None if
        the coach was (nearly) silent or the person is louder. Delay by cross-correlation, then
        a short least-squares filter around it: it fits the fractional delay and resampling of
        a real audio path, where one gain left ~14 dB. Where one gain already removes 30 dB (an
        exact electrical or file echo), the gain is kept: a filter fit to one word's spectrum
        can extrapolate badly to the next."""
        size, max_lag, lead = len(mic), int(MAX_DELAY * RATE), int(LEAD * RATE)
        span = max_lag + lead
        ref = self._reference(mic_end - size - max_lag, size + span)
        if float(np.dot(ref, ref)) < size * SILENT ** 2:
            return None
        n = 1 << int(np.ceil(np.log2(len(ref) + size)))
        # corr[m] = sum_j ref[j + m] * mic[j]: the microphone lags the reference by max_lag - m
        corr = np.fft.irfft(np.fft.rfft(ref, n) * np.fft.rfft(mic, n).conj(), n)[:span + 1]
        power = np.concatenate([[0.0], np.cumsum(ref.astype(np.float64) ** 2)])
        energy = np.sqrt(power[size:size + span + 1] - power[:span + 1] + 1e-9)
        norm = corr / (energy * (np.linalg.norm(mic) + 1e-9))
        norm[energy ** 2 < size * SILENT ** 2] = 0.0        # a lag that aligns with silence
        best = int(np.argmax(norm))
        if norm[best] < MIN_CORRELATION:
            return None
        lag = max_lag - best                                # echo delay in samples (< 0: mic ahead)
        ref = self._reference(mic_end - size - lag - HALF, size + 2 * HALF)
        rows = np.lib.stride_tricks.sliding_window_view(ref, 2 * HALF + 1)[:, ::-1]
        heard = np.abs(mic) < CLIPPED
        rows, mic = rows[heard], mic[heard]
        if len(mic) < size // 2:
            return None
        sums = products(rows, mic)
        if sums is None:
            return None
        gram, cross, mic_power = sums
        ridge = np.eye(len(gram)) * (1e-3 * np.trace(gram) / len(gram) + 1e-6)
        gain = cross[HALF] / (gram[HALF, HALF] + 1e-9)
        if mic_power - gain * cross[HALF] < GAIN_ENOUGH * mic_power:   # what one gain leaves
            taps = np.zeros(len(cross))
            taps[HALF] = gain
        else:
            taps = np.linalg.solve(gram + ridge, cross)
        return lag, taps.astype(np.float32)

    def _hindsight_db(self, a: int, b: int) -> Optional[float]:
        """The residue over session samples [a, b), in dB against the echo, had the echo path
        been fitted on that span itself, piece by piece (HINDSIGHT_PIECE). The path tracked as
        the coach speaks can be stale just after it starts a line (PulseAudio's buffers move the
        delay during its silences: a live "hurts" misheard there left -7 dB online), and on a
        busy machine the delay drifts and jumps within a word. Fitted in hindsight, the coach's
        own voice cancels; a person's word, not in the reference, stays whatever the path (a
        piece where none fits, the person louder or the coach silent, borrows the nearest)."""
        end = self._mic.end or 0
        if a < end - self._mic.size or b > end or b - a < HINDSIGHT_PIECE:
            return None
        starts = [min(lo, b - HINDSIGHT_PIECE) for lo in range(a, b, HINDSIGHT_PIECE)]  # the last overlaps
        models = [self._fit(self._mic.read(lo, HINDSIGHT_PIECE), lo + HINDSIGHT_PIECE) for lo in starts]
        fitted = [i for i, model in enumerate(models) if model is not None]
        if not fitted:
            return None
        left = removed = 0.0
        for lo in range(a, b - FRAME + 1, FRAME):
            i = min((lo - a) // HINDSIGHT_PIECE, len(starts) - 1)
            near = sorted(fitted, key=lambda j: abs(j - i))[:3]   # its piece's path and the nearest others
            mic = self._mic.read(lo, FRAME).astype(np.float64)
            heard = (np.abs(mic) < CLIPPED).reshape(-1, BLOCK)
            echoes = np.array([self._echo(models[j], lo, FRAME) for j in near], np.float64).reshape(len(near), -1, BLOCK)
            lefts = np.sum(((mic.reshape(-1, BLOCK) - echoes) ** 2) * heard, axis=2)   # candidate x block
            best = np.argmin(lefts, axis=0)
            blocks = np.arange(len(best))
            left += float(np.sum(lefts[best, blocks]))
            removed += float(np.sum((echoes[best, blocks] ** 2) * heard))
        return 10 * float(np.log10(max(left, 1e-9) / max(removed, 1e-9)))
