"""`voicecoach devices` and `voicecoach doctor` against PulseAudio virtual devices: a null sink
is the speaker (recorded from its monitor), another sink's monitor is the microphone, and
`paplay` into that sink is a person talking (a real recorded "stop")."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from conftest import DATA, voicecoach
from voicecoach.audio import read_wav, rms_dbfs

pytestmark = pytest.mark.pulse
PERSON = DATA / "speech" / "stop-person.wav"




def test_devices_lists_sound_server_names(pulse, pulse_env):
    sink = pulse.sink()
    r = voicecoach("devices", env=pulse_env)
    assert r.returncode == 0, r.stderr
    assert "PortAudio devices" in r.stdout and " pulse" in r.stdout
    speakers, mics = r.stdout.split("PulseAudio/PipeWire microphones (--mic NAME):")
    assert f"\n  {sink}  " in speakers and f"\n  {sink}.monitor  " in mics


def test_doctor_passes_hears_the_word_and_plays_the_speaker(pulse, pulse_env, tmp_path):
    mic, speaker = pulse.sink("mic"), pulse.sink("spk")
    recording = tmp_path / "speaker.wav"
    recorder = subprocess.Popen(["parecord", "-d", f"{speaker}.monitor", "--rate=16000", "--channels=1",
                                 "--format=s16le", "--file-format=wav", str(recording)], env=pulse_env)
    doctor = subprocess.Popen([sys.executable, "-m", "voicecoach", "doctor", "--mic", f"{mic}.monitor", "--speaker", speaker,
                               "--seconds", "3", "--word", "stop"], env=pulse_env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while doctor.poll() is None:  # a person repeating the word until the doctor is done
            subprocess.run(["paplay", "-d", mic, str(PERSON)], env=pulse_env, timeout=20)
            time.sleep(0.3)
        out, err = doctor.communicate(timeout=120)
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=10)
        if doctor.poll() is None:
            doctor.kill()
    assert doctor.returncode == 0, out + err
    lines = out.splitlines()
    for check in ("espeak-ng", "PortAudio", f"speaker {speaker}", f"microphone {mic}.monitor"):
        assert any(line.startswith(f"PASS  {check}:") for line in lines), out
    assert any(line.startswith("PASS  hearing: heard 'stop' (stop)") and "score" in line for line in lines), out
    assert any(line.startswith(("INFO  echo cancellation", "PASS  echo cancellation")) for line in lines)
    assert lines[-1] == "all checks passed"
    assert rms_dbfs(read_wav(recording)) > -50  # the chime and the line reached the speaker


def test_doctor_fails_on_a_silent_microphone(pulse, pulse_env):
    mic, speaker = pulse.sink("mic"), pulse.sink("spk")
    r = voicecoach("doctor", "--mic", f"{mic}.monitor", "--speaker", speaker, "--seconds", "1", env=pulse_env)
    assert r.returncode == 1
    assert f"FAIL  microphone {mic}.monitor: silent" in r.stdout
    assert "INFO  hearing: not tested" in r.stdout
    assert r.stdout.splitlines()[-1] == "1 check(s) failed"


def test_doctor_names_a_missing_device(pulse, pulse_env):
    r = voicecoach("doctor", "--mic", "no-such-mic", "--speaker", "no-such-speaker", "--seconds", "1",
                   env=pulse_env)
    assert r.returncode == 1
    assert "FAIL  microphone no-such-mic: no input device named like 'no-such-mic'" in r.stdout
    assert "FAIL  speaker no-such-speaker: no output device named like 'no-such-speaker'" in r.stdout
