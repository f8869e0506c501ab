"""Device and dependency faults through the real command line: PulseAudio virtual devices that
vanish mid-session, file-backed devices that fail on cue, and espeak-ng or PortAudio made
unloadable in a private mount namespace (the library file replaced by an empty one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import REPO, Pulse, voicecoach
from rig import voicecoach_with_faults
from voicecoach.history import History
from voicecoach.routine import ENGINE_LINES

MIC_LOST = ENGINE_LINES["mic_lost"]


def events(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []




def start(args: List[str], env: Dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "voicecoach", *args], env=env, cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_until(predicate, seconds: float, what: str) -> float:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)
    return time.monotonic()


def said(path: Path) -> List[str]:
    return [e["text"] for e in events(path) if e["type"] == "say"]


# -- microphone --------------------------------------------------------------------------


@pytest.mark.pulse
def test_missing_microphone_is_refused_before_anything_is_said(pulse_env: Dict[str, str],
                                                               pulse: Pulse,
                                                               tmp_path: Path) -> None:
    speaker = pulse.sink()
    timeline = tmp_path / "t.jsonl"
    r = voicecoach("run", "--mic", "no-such-microphone", "--speaker", speaker, "--timeline",
                   str(timeline), "--db", str(tmp_path / "h.db"), env=pulse_env, timeout=60)
    assert r.returncode == 1, r.stderr
    ours = [line for line in r.stderr.splitlines() if line.startswith("voicecoach:")]
    assert len(ours) == 1 and "input device" in ours[0] and "no-such-microphone" in ours[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not timeline.exists() and not (tmp_path / "h.db").exists()


@pytest.mark.pulse
def test_missing_microphone_is_fine_without_listening(pulse_env: Dict[str, str], pulse: Pulse,
                                                      tmp_path: Path) -> None:
    """--no-listen never opens the microphone: the session starts and says voice stop is off."""
    speaker = pulse.sink()
    timeline = tmp_path / "t.jsonl"
    proc = start(["run", "--no-listen", "--mic", "no-such-microphone", "--speaker", speaker,
                  "--timeline", str(timeline), "--db", str(tmp_path / "h.db")], pulse_env)
    wait_until(lambda: ENGINE_LINES["deaf"] in said(timeline), 60, "the deaf warning")
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 4, err
    assert [s["outcome"] for s in History(tmp_path / "h.db").sessions()] == ["stopped"]


def test_microphone_failing_mid_session_is_a_spoken_safety_stop(tmp_path: Path,
                                                                user_env: Dict[str, str]) -> None:
    timeline = tmp_path / "t.jsonl"
    r = voicecoach_with_faults("run", "--speaker-file", str(tmp_path / "o.wav"), "--mic-fail-at", "20",
                               "--timeline", str(timeline), "--db", str(tmp_path / "h.db"), env=user_env)
    assert r.returncode == 3, r.stderr
    lost = [e for e in events(timeline) if e["type"] == "say" and e["text"] == MIC_LOST]
    assert len(lost) == 1 and 20 <= lost[0]["at"] < 20.5         # said within a frame or two
    later = [e for e in events(timeline) if e["type"] in ("say", "rounddone") and e["at"] > lost[0]["at"]]
    assert all(e["type"] == "say" and not e["text"].isalpha() or e["text"] != "one" for e in later)
    assert not any(e["type"] == "rounddone" for e in later)     # no counting after going deaf
    assert events(timeline)[-1]["outcome"] == "mic-lost"
    assert [s["outcome"] for s in History(tmp_path / "h.db").sessions()] == ["mic-lost"]
    assert "microphone" in r.stdout


@pytest.mark.pulse
@pytest.mark.slow
def test_microphone_unplugged_live_stops_the_session(pulse_env: Dict[str, str], pulse: Pulse,
                                                     tmp_path: Path) -> None:
    """The microphone's PulseAudio device is unloaded mid-session: stop, and say why."""
    mic_sink = pulse.sink("mic")
    mic_module = pulse.modules[-1]
    speaker = pulse.sink("spk")
    timeline = tmp_path / "t.jsonl"
    proc = start(["run", "--mic", f"{mic_sink}.monitor", "--speaker", speaker, "--timeline",
                  str(timeline), "--db", str(tmp_path / "h.db")], pulse_env)
    wait_until(lambda: len(said(timeline)) >= 1, 60, "the session to start speaking")
    time.sleep(1.0)
    pulse.unload(mic_module)
    unplugged = time.monotonic()
    noticed = wait_until(lambda: MIC_LOST in said(timeline), 15, "the microphone-lost line")
    assert noticed - unplugged < 3.0
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert events(timeline)[-1]["outcome"] == "mic-lost"
    assert [s["outcome"] for s in History(tmp_path / "h.db").sessions()] == ["mic-lost"]


# -- speaker -----------------------------------------------------------------------------


def test_speaker_failing_mid_session_exits_1_with_the_reason_logged(tmp_path: Path,
                                                                    user_env: Dict[str, str]) -> None:
    db = tmp_path / "h.db"
    r = voicecoach_with_faults("run", "--no-listen", "--speaker-file", str(tmp_path / "o.wav"),
                               "--speaker-fail-at", "30", "--db", str(db), env=user_env)
    assert r.returncode == 1, r.stderr
    assert "speaker stopped working" in r.stdout + r.stderr and "Traceback" not in r.stderr
    (session,) = History(db).sessions()
    assert session["outcome"] == "error" and "speaker stopped working" in session["stopped_at"]


@pytest.mark.pulse
@pytest.mark.slow
def test_speaker_unplugged_live_exits_1_with_the_reason_logged(pulse_env: Dict[str, str],
                                                              pulse: Pulse, tmp_path: Path) -> None:
    speaker = pulse.sink("spk")
    module = pulse.modules[-1]
    db = tmp_path / "h.db"
    timeline = tmp_path / "t.jsonl"
    proc = start(["run", "--no-listen", "--speaker", speaker, "--timeline", str(timeline),
                  "--db", str(db)], pulse_env)
    wait_until(lambda: len(said(timeline)) >= 1, 60, "the session to start speaking")
    time.sleep(0.5)
    pulse.unload(module)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "speaker stopped working" in out
    (session,) = History(db).sessions()
    assert session["outcome"] == "error" and "speaker" in session["stopped_at"]


# -- missing system packages -------------------------------------------------------------


def _loaded_path(fragment: str) -> str:
    """The file this process actually mapped for a library (what the child would load)."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and fragment in parts[-1]:
            return os.path.realpath(parts[-1])
    pytest.fail(f"{fragment} is not loaded in the test process")


def without_library(library: str, command: List[str]) -> List[str]:
    """Run `command` in a private mount namespace where `library` is an empty file: the dynamic
    loader fails on it exactly as when the package is not installed."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is needed to hide a library honestly")
    for flags in (["--mount"], ["--map-root-user", "--mount"]):
        probe = subprocess.run(["unshare", *flags, "true"], capture_output=True)
        if probe.returncode == 0:
            return ["unshare", *flags, "sh", "-c", 'mount --bind /dev/null "$0" && exec "$@"',
                    library, *command]
    pytest.skip("no mount namespace available here (needs root or user namespaces)")


def test_espeak_ng_missing_names_the_package(tmp_path: Path, user_env: Dict[str, str]) -> None:
    import ctypes
    ctypes.CDLL("libespeak-ng.so.1")
    library = _loaded_path("libespeak-ng")
    env = {**user_env, "XDG_CACHE_HOME": str(tmp_path / "cold-cache")}   # nothing pre-rendered
    command = without_library(library, [sys.executable, "-m", "voicecoach", "run", "--no-listen",
                                        "--speaker-file", str(tmp_path / "o.wav"),
                                        "--db", str(tmp_path / "h.db")])
    r = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == [
        "voicecoach: espeak-ng is not installed: sudo apt-get install espeak-ng libespeak-ng1"]


@pytest.mark.pulse
def test_portaudio_missing_names_the_package(pulse_env: Dict[str, str], pulse: Pulse,
                                            tmp_path: Path) -> None:
    import pyaudio  # noqa: F401  (maps libportaudio into this process, to find its file)
    library = _loaded_path("libportaudio")
    command = without_library(library, [sys.executable, "-m", "voicecoach", "run", "--no-listen",
                                        "--speaker", pulse.sink(), "--db", str(tmp_path / "h.db")])
    r = subprocess.run(command, env=pulse_env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    ours = [line for line in r.stderr.splitlines() if line.startswith("voicecoach:")]
    assert len(ours) == 1 and "apt-get install" in ours[0] and "libportaudio2" in ours[0], r.stderr
    assert "Traceback" not in r.stderr
