"""Shared by the benchmarks: PulseAudio virtual devices, recordings on a common clock, the
person's voice, and measurements taken from audio rather than from voicecoach's own account.

The common clock: a recording is `parec` from a sink's monitor, read in this process and each
chunk stamped with time.monotonic() on arrival. A sample cannot arrive before it was played, so
sample n was played no later than stamp_k - (N_k - n) / RATE for every chunk k ending at sample
N_k; the tightest of these bounds (the chunk that arrived with the least delay) anchors the
whole recording. The residual error is the monitor's smallest delivery delay (a few ms, the
same for every recording), and a null sink runs on the system clock, so nothing drifts.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from voicecoach.audio import RATE
from voicecoach.pulse import SERVER_ARGS, load_loopback

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
PYTHON = sys.executable
LOUD_DB = -40.0
"""Sound vs silence in recordings: the threshold `voicecoach.audio.onsets` uses."""
PERSON = ("en-us", 150)
"""espeak-ng voice and rate of the person saying "pain" (a voice other than the coach's)."""

ROUTINE = """\
name: Bench
setup: [{setup}]
sides: [left]
hold_seconds: {hold}
rounds: 1
cues:
  position: "Your {{side}} leg."
  hold: "Hold."
  release: "Release."
  complete: "Done."
"""


def write_routine(directory: Path, hold: int = 10, setup: str = "Ready.") -> Path:
    """A one-side, one-round routine: the shortest session that has a whole counted hold."""
    path = directory / f"routine-{hold}.yaml"
    path.write_text(ROUTINE.format(hold=hold, setup=json.dumps(setup)))
    return path


# -- PulseAudio ----------------------------------------------------------------------------


def pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True, timeout=20).stdout


def ensure_pulse() -> Tuple[str, bool]:
    """A running PulseAudio server (started if needed): its address, for PULSE_SERVER, and
    whether this call started it (then it is the caller's to stop: `stop_pulse`)."""
    started = False
    if subprocess.run(["pactl", "info"], capture_output=True).returncode != 0:
        subprocess.run(["pulseaudio", *SERVER_ARGS], check=True, capture_output=True)
        started = True
        deadline = time.monotonic() + 15
        while subprocess.run(["pactl", "info"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("PulseAudio did not start")
            time.sleep(0.2)
    for line in pactl("info").splitlines():
        if line.startswith("Server String:"):
            server = line.split(":", 1)[1].strip()
            return (server if ":" in server else f"unix:{server}"), started
    raise RuntimeError("pactl info names no server")


def stop_pulse(env: Optional[Dict[str, str]] = None) -> None:
    """Stop the PulseAudio server of this user and runtime directory (one this process started:
    `pulseaudio -k` reads its pid file, so no other user's or directory's server is touched)."""
    subprocess.run(["pulseaudio", "-k"], capture_output=True, env=env, timeout=20)


class Pulse:
    """Virtual speakers (null sinks at 16 kHz mono) and loopbacks, unloaded on exit."""

    def __init__(self) -> None:
        self.server, self._started = ensure_pulse()
        self._modules: List[str] = []

    def sink(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:6]}"
        self._modules.append(pactl("load-module", "module-null-sink", f"sink_name={name}",
                                   "rate=16000", "channels=1").strip())
        return name

    def loopback(self, source: str, sink: str, latency_ms: int = 10, db: float = 0.0) -> None:
        """The speaker heard by the microphone, at `db` (0: as loud as it plays)."""
        self._modules.append(load_loopback(pactl, source, sink, latency_ms, db))

    def close(self) -> None:
        for m in reversed(self._modules):
            subprocess.run(["pactl", "unload-module", m], capture_output=True)
        self._modules.clear()

    def __enter__(self) -> "Pulse":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        if self._started:        # a server this rig started stops with it
            stop_pulse()


class Recorder:
    """A sink's monitor recorded in memory, mapped onto time.monotonic() (see module doc)."""

    def __init__(self, source: str, env: Optional[Dict[str, str]] = None) -> None:
        self._proc = subprocess.Popen(
            ["parec", "-d", source, "--raw", "--rate=16000", "--channels=1", "--format=s16le",
             "--latency-msec=10"], stdout=subprocess.PIPE, env=env)
        self._chunks: List[bytes] = []
        self._bytes = 0
        self._t0 = float("inf")
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while self._bytes < RATE and time.monotonic() < deadline:  # wait for 0.5 s to flow
            time.sleep(0.01)
        if self._bytes < RATE:
            self.stop()
            raise RuntimeError(f"parec delivers nothing from {source}")

    def _read(self) -> None:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while True:
            data = os.read(fd, 640)
            stamp = time.monotonic()
            if not data:
                return
            with self._lock:
                self._chunks.append(data)
                self._bytes += len(data)
                self._t0 = min(self._t0, stamp - self._bytes / 2 / RATE)

    @property
    def t0(self) -> float:
        """Monotonic time at which sample 0 was played."""
        return self._t0

    def samples(self) -> np.ndarray:
        with self._lock:
            raw = b"".join(self._chunks)
        return np.frombuffer(raw[: len(raw) // 2 * 2], "<i2")

    def stop(self) -> np.ndarray:
        self._proc.terminate()
        self._proc.wait(timeout=5)
        self._thread.join(timeout=5)
        return self.samples()


def play(sink: str, wav: Path, env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    """A person speaking: paplay into the microphone's sink."""
    return subprocess.Popen(["paplay", "-d", sink, str(wav)], env=env)


# -- voicecoach as a process ---------------------------------------------------------------


def user_env(directory: Path, pulse_server: Optional[str] = None, cache: Optional[Path] = None) -> Dict[str, str]:
    """An isolated user (own lock and history: other sessions may run on this machine)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for name in ("XDG_RUNTIME_DIR", "XDG_DATA_HOME"):
        path = directory / name.lower()
        path.mkdir(mode=0o700, exist_ok=True)
        env[name] = str(path)
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    if pulse_server:
        env["PULSE_SERVER"] = pulse_server
    return env


def voicecoach(*args: str, env: Dict[str, str], **kw) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "voicecoach", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def timeline(path: Path) -> List[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def wait_for_say(path: Path, text: str, proc: subprocess.Popen, timeout: float = 60) -> Optional[dict]:
    """The timeline entry of `text` once the live session writes it (it is written as it plays)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for e in timeline(path):
            if e["type"] == "say" and e["text"] == text:
                return e
        time.sleep(0.005)
    return None


# -- the person ----------------------------------------------------------------------------


def person_says(word: str, path: Path) -> Path:
    """Real synthetic speech of `word` by a voice other than the coach's, 16 kHz WAV."""
    voice, rate = PERSON
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(raw), word], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(path)], check=True)
    raw.unlink()
    return path


# -- measurements --------------------------------------------------------------------------


def loud(samples: np.ndarray, db: float = LOUD_DB) -> np.ndarray:
    """Indices of samples above the sound/silence threshold."""
    return np.flatnonzero(np.abs(samples.astype(np.int32)) > 32768 * 10 ** (db / 20))


def voiced_span(samples: np.ndarray) -> tuple:
    """(first, last) sample index of sound: a word's voiced region in a recording."""
    idx = loud(samples)
    if len(idx) == 0:
        raise ValueError("no sound")
    return int(idx[0]), int(idx[-1])


def silent_from(samples: np.ndarray, start: int, hold: float = 0.3) -> int:
    """First index >= start after which nothing sounds for `hold` s (or until the recording
    ends): where the output went quiet."""
    idx = loud(samples[start:]) + start
    if len(idx) == 0:
        return start
    ends = np.append(idx, len(samples) + int(hold * RATE) + 1)
    return int(idx[np.flatnonzero(np.diff(ends) > hold * RATE)[0]]) + 1


def find(template: np.ndarray, samples: np.ndarray, start: int, end: int) -> Optional[int]:
    """Where `template` (e.g. the alert earcon) starts in samples[start:end], by normalised
    cross-correlation; None if it is not clearly there."""
    seg = samples[max(start, 0):min(end, len(samples))].astype(np.float64)
    tpl = template.astype(np.float64)
    if len(seg) < len(tpl):
        return None
    n = 1 << int(np.ceil(np.log2(len(seg) + len(tpl))))
    corr = np.fft.irfft(np.fft.rfft(seg, n) * np.conj(np.fft.rfft(tpl, n)), n)[: len(seg) - len(tpl) + 1]
    norms = np.sqrt(np.convolve(seg ** 2, np.ones(len(tpl)), "valid"))
    score = corr / np.maximum(norms * np.linalg.norm(tpl), 1e-9)
    score[norms < 0.5 * np.linalg.norm(tpl)] = 0          # a faint tail is not the earcon
    best = int(np.argmax(score))
    return max(start, 0) + best if score[best] > 0.9 else None


def count_runs(times: Sequence[float], spacing: float = 1.0, slack: float = 0.1, least: int = 3) -> List[List[float]]:
    """Onsets about one second apart: the counted holds, found from the audio alone."""
    runs: List[List[float]] = [[times[0]]] if times else []
    for t in times[1:]:
        if abs(t - runs[-1][-1] - spacing) < slack:
            runs[-1].append(t)
        else:
            runs.append([t])
    return [r for r in runs if len(r) >= least]


def spacing_stats(intervals: Sequence[float]) -> Dict[str, float]:
    """Median spacing and worst deviation from one second, in ms."""
    dev = [abs(x - 1.0) for x in intervals]
    return {"median_ms": 1000 * statistics.median(intervals), "worst_dev_ms": 1000 * max(dev),
            "n": len(intervals)}


def summary(values: Sequence[float]) -> Dict[str, float]:
    """Median and worst (max) of a list of latencies, in ms."""
    if not values:
        return {"n": 0}
    return {"median_ms": 1000 * statistics.median(values), "worst_ms": 1000 * max(values),
            "best_ms": 1000 * min(values), "n": len(values)}


def save(name: str, data: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=float) + "\n")   # numpy numbers too
    return path


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        yield Path(d)
