"""Whole sessions on real PortAudio through PulseAudio virtual devices, in real time.

The speaker is a null sink recorded from its monitor with parecord; the microphone is another
null sink's monitor, into which a person saying "pain" (a neural voice no training or tuning
heard: tests/data/speech/README.txt) is played with paplay and the speaker is coupled at 0 dB
with module-loopback. Bounds are
loose enough for a loaded 2-core machine; the precise figures are bench/timing.py's and
bench/latency.py's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

from conftest import DATA, REPO, Pulse, voicecoach
from voicecoach.audio import RATE, onsets, read_wav, speech_power, write_wav

SPACING_TOLERANCE = 0.030
ROUTINE = """\
name: Short
setup: ["Ready."]
sides: [left]
hold_seconds: {hold}
rounds: 1
cues:
  position: "Your {{side}} leg."
  hold: "Hold."
  release: "Release."
  complete: "Done."
"""


def short_routine(directory: Path, hold: int = 5) -> Path:
    """One side, one round: the shortest session with a whole counted hold (CI time)."""
    path = directory / "short.yaml"
    path.write_text(ROUTINE.format(hold=hold))
    return path


PEOPLE = (DATA / "speech" / "pain-kokoro-af_sky.wav", DATA / "speech" / "pain-kokoro-am_fenrir.wav")
"""Two held-out Kokoro voices saying "pain" in a short phrase ("ow, pain", "sharp pain"): the
listener was trained on other voices of people and of Kokoro; espeak-ng's robotic "pain" is
heard less over the coach's voice than a person's (docs/hearing-data.md)."""


def person_says(voice: Path, path: Path) -> Path:
    """A person's words as a 16 kHz WAV, as loud as espeak-ng (the coach's engine) says "pain",
    in a room with a little noise (digital silence around a clean synthetic word is not what a
    mic hears)."""
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), "pain"], check=True)
    said = read_wav(voice).astype(np.float64)
    said *= np.sqrt(speech_power(read_wav(raw)) / speech_power(said))
    pad = np.zeros(RATE // 4)
    said = np.concatenate([pad, said, pad])
    noisy = said + np.random.default_rng(0).normal(0, 60, len(said))
    write_wav(path, np.clip(noisy, -32768, 32767).astype(np.int16))
    return path


def timeline(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def wait_for_say(path: Path, text: str, proc: subprocess.Popen, timeout: float = 90) -> bool:
    """True once the live session has said `text` (the timeline is written as it plays)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and any(e["type"] == "say" and e["text"] == text for e in timeline(path)):
            return True
        time.sleep(0.01)
    return False




def record(source: str, path: Path, pulse_env: Dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(["parecord", "-d", source, "--rate=16000", "--channels=1",
                             "--format=s16le", "--file-format=wav", str(path)], env=pulse_env)
    time.sleep(0.5)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def test_counts_keep_their_second_on_real_devices(pulse: Pulse, pulse_env: Dict[str, str], tmp_path: Path) -> None:
    spk = pulse.sink("spk")
    rec = record(f"{spk}.monitor", tmp_path / "out.wav", pulse_env)
    try:
        r = voicecoach("run", str(short_routine(tmp_path)), "--no-listen", "--speaker", spk,
                       env=pulse_env, timeout=120)
    finally:
        time.sleep(0.3)
        stop(rec)
    assert r.returncode == 0, r.stderr
    heard = onsets(read_wav(tmp_path / "out.wav"))
    runs = [[heard[0]]]
    for t in heard[1:]:
        (runs[-1].append(t) if abs(t - runs[-1][-1] - 1.0) < 0.1 else runs.append([t]))
    counts = max(runs, key=len)
    assert len(counts) >= 5, heard                          # five counts, heard in the recording
    spacing = np.diff(counts[:5])
    assert np.all(np.abs(spacing - 1.0) <= SPACING_TOLERANCE), spacing


def live_session(pulse: Pulse, pulse_env: Dict[str, str], tmp_path: Path, pain_after: str = "",
                 person: Path = PEOPLE[0]) -> subprocess.CompletedProcess:
    """A listening session whose speaker is coupled into its microphone at 0 dB; optionally
    the person says "pain" over the counting once the coach has said `pain_after`."""
    mic, spk = pulse.sink("mic"), pulse.sink("spk")
    pulse.loopback(f"{spk}.monitor", mic, latency_ms=10)
    tl = tmp_path / "timeline.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "voicecoach", "run", str(short_routine(tmp_path)),
                             "--mic", f"{mic}.monitor", "--speaker", spk, "--timeline", str(tl)],
                            env=pulse_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        if pain_after:
            assert wait_for_say(tl, pain_after, proc), tl.read_text() if tl.exists() else "(no timeline)"
            time.sleep(0.3)
            subprocess.run(["paplay", "-d", mic, str(person_says(person, tmp_path / "pain.wav"))],
                           env=pulse_env, check=True, timeout=10)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    print(tl.read_text() if tl.exists() else "(no timeline)")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def attempt(tmp_path: Path, n: int) -> Path:
    """A fresh folder per try, so a second session never reads the first one's timeline."""
    path = tmp_path / f"try{n}"
    path.mkdir()
    return path


def at_most_twice(session: Callable[[int], subprocess.CompletedProcess], expected: int) -> subprocess.CompletedProcess:
    """A live session, run again once if it did not end with `expected`. Through PulseAudio's
    loopback at 0 dB each of the two did right 28 times in 28 here on 2026-11-26 (20 idle, 8 with
    training busy on the other core), but once in CI that day one did not (README): one miss is
    warned of, two in a row fail. A broken canceller or spotter misses every time."""
    first = session(1)
    if first.returncode == expected:
        return first
    warnings.warn(f"live session ended with {first.returncode}, not {expected}, once; trying again:\n"
                  f"{first.stdout[-3000:]}{first.stderr[-2000:]}")
    return session(2)


def test_own_voice_at_0_db_does_not_stop_a_live_session(pulse: Pulse, pulse_env: Dict[str, str], tmp_path: Path) -> None:
    r = at_most_twice(lambda n: live_session(pulse, pulse_env, attempt(tmp_path, n)), 0)
    assert r.returncode == 0, r.stdout + r.stderr


def test_pain_over_the_counting_stops_a_live_session(pulse: Pulse, pulse_env: Dict[str, str], tmp_path: Path) -> None:
    r = at_most_twice(lambda n: live_session(pulse, pulse_env, attempt(tmp_path, n), pain_after="two",
                                             person=PEOPLE[n - 1]), 3)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "pain" in r.stdout
