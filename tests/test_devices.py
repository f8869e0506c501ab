"""Speaker and microphone: file-backed ones (any WAV format, echo, failure on cue) and PyAudio
ones on PulseAudio virtual devices."""

from __future__ import annotations

import time
import wave
from typing import Optional

import numpy as np
import pytest

from voicecoach.audio import FRAME, RATE, read_wav, resample, rms_dbfs
from voicecoach.devices import (DeviceError, FileMicrophone, FileSpeaker, MicrophoneLost,
                                PyAudioMicrophone, PyAudioSpeaker, find_device, open_pyaudio)
from rig import FailingMicrophone, FailingSpeaker

TONE = (10000 * np.sin(np.arange(RATE) * 2 * np.pi * 440 / RATE)).astype(np.int16)


def write_raw(path, samples: np.ndarray, rate: int, channels: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(samples, channels).astype("<i2").tobytes())


@pytest.mark.parametrize("rate,channels", [(8000, 1), (16000, 1), (44100, 2), (48000, 2)])
def test_file_microphone_reads_any_rate_and_channels_then_silence(tmp_path, rate, channels):
    path = tmp_path / "in.wav"
    write_raw(path, resample(TONE, RATE, rate), rate, channels)
    mic = FileMicrophone(path)
    frames = mic.frames(1.5)
    assert len(frames) == 150 and all(len(f) == FRAME for _, f in frames)
    assert [t for t, _ in frames[:3]] == pytest.approx([0.0, 0.01, 0.02])
    audio = np.concatenate([f for _, f in frames])
    assert rms_dbfs(audio[: RATE - 400]) > -15                  # the tone, at its level
    assert np.all(audio[RATE + 200:] == 0)                       # then silence
    assert mic.frames(1.5) == []                                 # nothing twice


def test_file_microphone_hears_the_speaker_when_coupled():
    spk = FileSpeaker(None)
    mic = FileMicrophone(None, echo_from=spk, echo_db=-6.0, echo_delay=0.03)
    for i in range(50):
        spk.write(TONE[i * FRAME:(i + 1) * FRAME])
    heard = np.concatenate([f for _, f in mic.frames(0.5)])
    assert np.all(heard[:3 * FRAME] == 0)                        # 30 ms of delay
    expected = (TONE[: 47 * FRAME].astype(np.float32) * 10 ** (-6 / 20))
    assert np.allclose(heard[3 * FRAME:], expected, atol=1)


def test_the_rigs_devices_fail_on_cue(tmp_path):
    mic = FailingMicrophone(FileMicrophone(None), 0.2)
    assert len(mic.frames(0.2)) == 20
    with pytest.raises(MicrophoneLost):
        mic.frames(0.3)
    spk = FailingSpeaker(FileSpeaker(tmp_path / "out.wav"), 0.1)
    for _ in range(10):
        spk.write(np.zeros(FRAME, np.int16))
    with pytest.raises(DeviceError):
        spk.write(np.zeros(FRAME, np.int16))
    spk.close()
    assert len(read_wav(tmp_path / "out.wav")) == 10 * FRAME


@pytest.mark.pulse
def test_pyaudio_speaker_into_pyaudio_microphone_on_virtual_devices(pulse):
    """A real PortAudio stream out to a virtual speaker, read back through its monitor."""
    sink = pulse.sink()
    pa = open_pyaudio()
    try:
        mic = PyAudioMicrophone(pa, f"{sink}.monitor")
        assert mic.wait_ready()
        spk = PyAudioSpeaker(pa, sink)
        t0 = time.monotonic()
        for i in range(100):
            spk.write(TONE[i * FRAME:(i + 1) * FRAME])
        for _ in range(30):
            spk.write(np.zeros(FRAME, np.int16))
        elapsed = time.monotonic() - t0
        time.sleep(0.2)
        heard = np.concatenate([f for _, f in mic.frames(time.monotonic())])
        spk.close()
        mic.close()
    finally:
        pa.terminate()
    assert elapsed > 1.0                                          # writes are paced by the device
    assert rms_dbfs(heard) > -30                                  # and the tone came through


@pytest.mark.pulse
def test_devices_by_name_and_clear_errors(pulse):
    sink = pulse.sink()
    pa = open_pyaudio()
    try:
        assert find_device(pa, None, "output") is None
        assert find_device(pa, sink, "output") is not None        # routed through PulseAudio
        with pytest.raises(DeviceError, match="voicecoach devices"):
            find_device(pa, "no-such-device-xyz", "input")
        with pytest.raises(DeviceError):
            find_device(pa, "999", "output")
    finally:
        pa.terminate()


@pytest.mark.pulse
def test_microphone_lost_when_its_device_goes_away(pulse):
    sink = pulse.sink()
    module = pulse.modules[-1]
    pa = open_pyaudio()
    try:
        mic = PyAudioMicrophone(pa, f"{sink}.monitor")
        assert mic.wait_ready()
        pulse.unload(module)
        deadline = time.monotonic() + 10
        with pytest.raises(MicrophoneLost):
            while time.monotonic() < deadline:
                mic.frames(time.monotonic())
                time.sleep(0.05)
        mic.close()
    finally:
        pa.terminate()


class FakeStream:
    """A PortAudio stream at a device's own rate: plays into a list, records from a signal."""

    def __init__(self, signal: np.ndarray) -> None:
        self.signal, self.played, self.pos = signal, [], 0

    def read(self, n: int, exception_on_overflow: bool = True) -> bytes:
        block = np.zeros(n, np.int16)
        chunk = self.signal[self.pos:self.pos + n]
        block[: len(chunk)] = chunk
        self.pos += n
        time.sleep(0.001)
        return block.astype("<i2").tobytes()

    def write(self, data: bytes) -> None:
        self.played.append(np.frombuffer(data, "<i2"))

    def stop_stream(self) -> None: ...

    def close(self) -> None: ...


class FakePyAudio:
    """A PortAudio whose only device refuses 16 kHz: the coach must resample its stream."""

    def __init__(self, rate: int, signal: Optional[np.ndarray] = None) -> None:
        self.info = {"defaultSampleRate": float(rate), "name": "default"}
        self.stream = FakeStream(np.zeros(0, np.int16) if signal is None else signal)

    def get_device_count(self) -> int:
        return 0

    def get_default_input_device_info(self) -> dict:
        return self.info

    get_default_output_device_info = get_default_input_device_info

    def is_format_supported(self, rate, **kwargs) -> bool:
        raise ValueError("Invalid sample rate")

    def open(self, **kwargs) -> FakeStream:
        return self.stream


@pytest.mark.parametrize("rate", [44100, 48000, 22050])
def test_pyaudio_devices_at_other_rates_resample_as_one_stream(monkeypatch, rate):
    """Block by block, the device streams carry exactly the whole signal resampled at once:
    no clicks at 10 ms block edges, no drift from rounding each block's length."""
    import voicecoach.devices as devices
    monkeypatch.setattr(devices, "pulse_source", lambda index, pa: None)
    monkeypatch.setattr(devices, "pulse_sink", lambda index, pa: None)
    at_rate = resample(TONE, RATE, rate)
    pa = FakePyAudio(rate, at_rate)
    mic = PyAudioMicrophone(pa)
    deadline, heard = time.monotonic() + 10, []
    while sum(len(f) for _, f in heard) < RATE + 10 * FRAME and time.monotonic() < deadline:
        heard += mic.frames(time.monotonic())
        time.sleep(0.01)
    mic.close()
    expected = resample(at_rate, rate, RATE)
    assert np.array_equal(np.concatenate([f for _, f in heard])[: len(expected)], expected)

    spk = PyAudioSpeaker(FakePyAudio(rate))
    for i in range(len(TONE) // FRAME):
        spk.write(TONE[i * FRAME:(i + 1) * FRAME])
    played = np.concatenate(spk._stream.played)
    assert len(played) >= rate - 100 and np.array_equal(played, at_rate[: len(played)])
    spk.close()                                     # and the resampler's tail is played, not dropped
    assert np.array_equal(np.concatenate(spk._stream.played), at_rate)
