"""Echo cancellation against the played signal: the coach knows exactly what it plays.

The speaker beside the microphone puts the coach's own voice into what it hears, at about the
level of a person. The canceller keeps the last seconds of what was played, tracks the echo's
delay by cross-correlation while the coach speaks (ten times a second) and its drift (a
resampler in the path time-scales the echo), fits a short filter around that delay, and
subtracts the filtered reference from each microphone frame before the spotter hears it. Through PulseAudio's loopback at 0 dB this removes a median 20-25 dB of
the coach's voice (measured live: docs/benchmarks.md); room reverberation beyond +-0.5 ms is
left to the spotter and to the own-voice discount. For a word the spotter heard while the coach
spoke, it tells how much was left against what it removed (`left_db`): the spotter still
mishears the residue of the coach's voice ("hurts" in its lines), and the coach discounts a
word that was nothing but that.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Deque, List, NamedTuple, Optional, Sequence, Tuple

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
HINDSIGHT_DRIFTS = (-0.004, 0.004)
"""Drifts tried in hindsight beside the one tracked (samples per sample): a loopback's rate control
changed its drift from 40 to 130 samples a second within 2 s (0.25-0.8 %), so the one tracked,
the trend of the last 2 s, can be stale by that much over a word."""
BLOCK = FRAME // 4
"""The hindsight residue picks the best of its candidate paths for each 2.5 ms of a frame: an
underrun puts a gap in what the speaker played, so the delay jumps within a 10 ms frame, and no
one path cancels both sides of it (docs/echo-under-load.md)."""
MAX_DRIFT = 0.01
"""Fastest change of the echo's delay followed, in samples per sample (1 %). PulseAudio's loopback
converging on its latency time-scaled the echo by up to 0.8 % for the first 8 s of a session (its
delay fell by 40-130 samples a second), and a resampler between two devices' clocks drifts the
same way more slowly: over a 0.4 s window that is up to 52 samples, far beyond the filter's +-HALF
taps, so the path is fitted on a reference warped by the drift (docs/echo-under-load.md)."""
DRIFT_SECONDS = 2.0
"""The drift is the trend of the delays found over this long (s)."""
DRIFT_SPAN = 0.5
"""Two delays found this far apart (s) or more give a slope to the trend: nearer, a sample's
error is a large slope."""
JUMP = 3 * HALF
"""A delay found this far (samples) from where the tracked path put it, more than MAX_DRIFT
could have moved it since, is a jump: the drift's trend starts again from it."""
APART = 100
"""Candidate delays closer than this (samples) are one: a voice's pitch period is 2.5-12 ms."""
CANDIDATES = 3
"""Delays tried per estimate, each the best of its own region of the correlation."""
HOLD = RATE
"""A tracked drift is extrapolated this far (samples) past the window it was fitted on, no further:
the next estimate comes within 0.1 s while the coach speaks, and across a silence a guessed drift
would move the path further than it is likely to have moved."""
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


class Path(NamedTuple):
    """An echo path: the microphone hears the reference `delay` samples late at session sample
    `at`, `drift` samples later for every sample after it, through the filter `taps` (2 HALF + 1)."""

    delay: int
    taps: np.ndarray
    drift: float = 0.0
    at: int = 0

    def delays(self, samples: np.ndarray) -> np.ndarray:
        """The delay at each session sample (the drift held beyond HOLD of `at`)."""
        return self.delay + self.drift * np.clip(samples - self.at, -HOLD, HOLD)


class EchoCanceller:
    """Frames of played audio in (`played`), cleaned microphone frames out (`clean`)."""

    def __init__(self, seconds: float = 3.0) -> None:
        self._ref = Recent(int(seconds * RATE))       # the last seconds played
        self._mic = Recent(int(seconds * RATE))       # the last seconds heard, raw
        self._next: Optional[int] = None             # where the next frame starts, if contiguous
        self.counted = 0.0                           # session time the last frame was counted at
        self._since_estimate = 0
        self._found: Deque[Tuple[int, int]] = deque()   # (session sample, delay) of each path found
        self.model: Optional[Path] = None              # the echo path tracked
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

    def _echo(self, model: Path, begin: int, n: int) -> np.ndarray:
        """The echo `model` predicts in session samples [begin, begin + n)."""
        return np.convolve(self._warped(model, begin - HALF, n + 2 * HALF), model.taps, "valid")

    def _warped(self, model: Path, begin: int, n: int) -> np.ndarray:
        """The reference as the microphone hears it through `model`'s delay: for session samples
        [begin, begin + n), the played sample each came from (linearly interpolated where the
        drift puts it between two)."""
        if model.drift == 0.0:
            return self._reference(begin - model.delay, n)
        at = np.arange(begin, begin + n, dtype=np.float64)
        source = at - model.delays(at)
        first = int(np.floor(source.min()))
        held = self._reference(first, int(np.ceil(source.max())) - first + 2)
        return np.interp(source - first, np.arange(len(held)), held).astype(np.float32)

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

    def _fit(self, mic: np.ndarray, mic_end: int, drifts: Sequence[float] = ()) -> Optional[Path]:
        """The echo path in `mic` (ending at session sample `mic_end`), or None if the coach was
        (nearly) silent or the person is louder. Candidate delays by cross-correlation, and the
        path tracked so far; each gets a short least-squares filter on the reference warped by
        its delay and a drift (each of `drifts`, else the one tracked: `_track`) (it fits the
        fractional delay and resampling of a real audio path, where one gain left ~14 dB), and
        the one that leaves least is the path: a voice's pitch period lines the reference up with
        the microphone almost as well one period off, where no filter cancels it. Where one gain
        already removes 30 dB (an exact electrical or file echo), the gain is kept: a filter fit
        to one word's spectrum can extrapolate badly to the next."""
        size, max_lag, lead = len(mic), int(MAX_DELAY * RATE), int(LEAD * RATE)
        span = max_lag + lead
        ref = self._reference(mic_end - size - max_lag, size + span)
        if float(np.dot(ref, ref)) < size * SILENT ** 2:
            return None
        tracked = self.model if not drifts else None
        if not drifts:
            drifts = [tracked.drift if tracked is not None else 0.0]
        paths = [Path(max_lag - m, np.zeros(2 * HALF + 1, np.float32), drift, mic_end)
                 for drift, m in self._delays(ref, mic, span, drifts)]
        if tracked is not None and paths:     # where the path tracked so far puts it now
            paths.append(Path(int(round(float(tracked.delays(np.array([mic_end]))[0]))),
                              tracked.taps, tracked.drift, mic_end))
        best: Optional[Tuple[float, Path]] = None
        for path in paths:
            fitted = self._taps(path, mic, mic_end)
            if fitted is not None and (best is None or fitted[0] < best[0]):
                best = fitted
        heard = mic[np.abs(mic) < CLIPPED].astype(np.float64)
        if best is None or best[0] > (1 - MIN_CORRELATION ** 2) * float(heard @ heard):
            return None                      # it removes less than a path that correlated so would
        return best[1]

    def _estimate(self) -> None:
        end = self._mic.end or 0
        model = self._fit(self._mic.read(end - WINDOW, WINDOW), end)
        if model is not None:
            self.model = model._replace(drift=self._track(end, model.delay))

    def _taps(self, path: Path, mic: np.ndarray, mic_end: int) -> Optional[Tuple[float, Path]]:
        """(power left, `path` with its filter fitted to `mic`), or None where too much clipped."""
        size = len(mic)
        ref = self._warped(path, mic_end - size - HALF, size + 2 * HALF)
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
        left = mic_power - 2 * float(taps @ cross) + float(taps @ gram @ taps)
        return left, path._replace(taps=taps.astype(np.float32))

    @staticmethod
    def _delays(ref: np.ndarray, mic: np.ndarray, span: int, drifts: Sequence[float]) -> List[Tuple[float, int]]:
        """(drift, m) candidates for each of `drifts`: the microphone's window, its delay changing
        by the drift per sample, lines up with ref[m:] at its end (the delay there is span - LEAD - m
        samples); the best normalized correlation of each of up to CANDIDATES regions (a pitch period
        apart or more), down to half MIN_CORRELATION (a drift not yet tracked smears it: `_fit`
        judges each by what it removes). A drifting echo is time-scaled: so is the window first.
        The reference's spectrum and energies are the same for every drift: computed once."""
        size = len(mic)
        n = 1 << int(np.ceil(np.log2(len(ref) + size)))
        spectrum = np.fft.rfft(ref, n)
        power = np.concatenate([[0.0], np.cumsum(ref.astype(np.float64) ** 2)])
        energy = np.sqrt(power[size:size + span + 1] - power[:span + 1] + 1e-9)
        silent = energy ** 2 < size * SILENT ** 2            # a lag that aligns with silence
        out: List[Tuple[float, int]] = []
        for drift in drifts:
            window = mic
            if drift != 0.0:     # mic[j] came from the reference (1 - drift) j later: undo that
                at = size + (np.arange(size) - size) / (1.0 - drift)
                window = np.interp(at, np.arange(size), mic.astype(np.float64), left=0.0)
            # corr[m] = sum_j ref[j + m] * mic[j]: the microphone lags the reference by max_lag - m
            corr = np.fft.irfft(spectrum * np.fft.rfft(window, n).conj(), n)[:span + 1]
            norm = corr / (energy * (np.linalg.norm(window) + 1e-9))
            norm[silent] = 0.0
            found: List[int] = []
            for m in np.argsort(norm)[::-1][:256]:
                if norm[m] < MIN_CORRELATION / 2 or len(found) == CANDIDATES:
                    break
                if all(abs(int(m) - f) > APART for f in found):
                    found.append(int(m))
            out += [(drift, m) for m in found]
        return out

    def _track(self, at: int, delay: int) -> float:
        """The drift of the delays found over the last DRIFT_SECONDS (the median of their pairwise
        slopes, at least DRIFT_SPAN apart: one found a pitch period off does not move it)."""
        if self.model is not None and abs(delay - float(self.model.delays(np.array([at]))[0])) > \
                JUMP + MAX_DRIFT * abs(at - self.model.at):
            self._found.clear()              # a jump (an underrun, a buffer moved) is not a drift
        self._found.append((at, delay))
        while self._found and self._found[0][0] < at - DRIFT_SECONDS * RATE:
            self._found.popleft()
        found = list(self._found)
        slopes = [(d2 - d1) / (t2 - t1) for i, (t1, d1) in enumerate(found)
                  for t2, d2 in found[i + 1:] if t2 - t1 >= DRIFT_SPAN * RATE]
        if len(slopes) < 3:
            return self.model.drift if self.model is not None else 0.0
        return float(np.clip(np.median(slopes), -MAX_DRIFT, MAX_DRIFT))

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
        drift = self.model.drift if self.model is not None else 0.0      # a piece is too short to track its own
        drifts = [drift] + [drift + d for d in HINDSIGHT_DRIFTS]
        models = [self._fit(self._mic.read(lo, HINDSIGHT_PIECE), lo + HINDSIGHT_PIECE, drifts) for lo in starts]
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
