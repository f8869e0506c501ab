"""The live audio path on a busy machine: real PortAudio through PulseAudio null sinks.

A stalled writer (standing in for a loop preempted on a busy machine) underruns the speaker;
ALSA's messages about it must not reach the person's terminal, and the underruns are counted.
A live session asks for a raised scheduling priority and says on its timeline's last line what it
got, and how often the speaker ran dry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

from conftest import REPO, Pulse

STALLS = """
import sys, time
import numpy as np
from voicecoach.devices import AlsaMessages, PyAudioSpeaker, open_pyaudio
speaker = PyAudioSpeaker(open_pyaudio(), sys.argv[1])
tone = (np.sin(np.arange(160) / 5) * 3000).astype(np.int16)
for i in range(200):
    speaker.write(tone)
    if i % 50 == 25:
        time.sleep(0.2)          # longer than the output buffer: it runs dry
speaker.close()
print(speaker.underruns, AlsaMessages.underruns)
"""


def test_underruns_are_counted_and_alsa_stays_off_the_terminal(pulse: Pulse, pulse_env: Dict[str, str]) -> None:
    spk = pulse.sink("spk")
    done = subprocess.run([sys.executable, "-c", STALLS, spk], env=pulse_env, capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "ALSA" not in done.stderr and "underrun" not in done.stderr, done.stderr
    ours, alsa = map(int, done.stdout.split())
    assert 1 <= ours == alsa <= 8, done.stdout    # 4 stalls; a loaded machine may add a few


def test_a_live_session_records_its_priority_and_underruns(pulse: Pulse, pulse_env: Dict[str, str],
                                                          tmp_path: Path) -> None:
    spk = pulse.sink("spk")
    routine = tmp_path / "r.yaml"
    routine.write_text('name: Short\nsetup: ["Ready."]\nsides: [left]\nhold_seconds: 2\nrounds: 1\n'
                       'cues:\n  position: "Your {side} leg."\n  hold: "Hold."\n  release: "Release."\n  complete: "Done."\n')
    tl = tmp_path / "timeline.jsonl"
    done = subprocess.run([sys.executable, "-m", "voicecoach", "run", str(routine), "--no-listen",
                           "--speaker", spk, "--timeline", str(tl)], env=pulse_env, capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "ALSA" not in done.stderr, done.stderr
    ended = json.loads(tl.read_text().splitlines()[-1])
    assert ended["type"] == "ended" and ended["priority"] in ("realtime", "nice", "normal"), ended
    assert ended["underruns"] >= 0


def test_the_fixtures_stop_the_server_they_started(tmp_path: Path) -> None:
    """A test run that started PulseAudio stops it when it ends (`scripts/test` left it running);
    one it found running it leaves alone (this very run's, here)."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if k != "PULSE_SERVER"}
    env["XDG_RUNTIME_DIR"] = str(runtime)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"{Path(__file__).name}::test_underruns_are_counted_and_alsa_stays_off_the_terminal"],
                          env=env, capture_output=True, text=True, timeout=180, cwd=Path(__file__).parent)
    assert done.returncode == 0, done.stdout[-2000:]
    assert subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0
    assert not (runtime / "pulse" / "pid").exists()
    assert subprocess.run(["pactl", "info"], capture_output=True).returncode == 0 or "PULSE_SERVER" not in os.environ


def test_a_slow_sound_server_query_is_not_a_lost_microphone(pulse: Pulse, pulse_env: Dict[str, str],
                                                            tmp_path: Path, monkeypatch) -> None:
    """The microphone checks twice a second that its PulseAudio source still exists (pactl). On
    a busy machine pactl took over a second; run on the reading thread, that stalled the reads
    and the session ended as if the microphone were lost (a live session beside two busy
    loops, load 12: "I can no longer hear you"). Here pactl is the real one, 1.5 s late."""
    import shutil
    import time
    from voicecoach.devices import MicrophoneLost, PyAudioMicrophone, open_pyaudio
    slow = tmp_path / "bin"
    slow.mkdir()
    (slow / "pactl").write_text(f"#!/bin/sh\nsleep 1.5\nexec {shutil.which('pactl')} \"$@\"\n")
    (slow / "pactl").chmod(0o755)
    mic = pulse.sink("mic")
    monkeypatch.setenv("PATH", f"{slow}:{os.environ['PATH']}")
    pa = open_pyaudio()
    microphone = PyAudioMicrophone(pa, f"{mic}.monitor")
    try:
        assert microphone.wait_ready()
        deadline, frames = time.monotonic() + 4.0, 0
        while time.monotonic() < deadline:
            frames += len(microphone.frames(0.0))     # raises MicrophoneLost on a stall
            time.sleep(0.05)
        assert frames > 300
    except MicrophoneLost as exc:
        raise AssertionError(f"a slow pactl was taken for a lost microphone: {exc}") from exc
    finally:
        microphone.close()
        pa.terminate()
