"""Speaker and microphone behind one narrow interface: PyAudio devices, or WAV files.

The session clock is the speaker's own sample count, so counts land where the person hears
them and nothing drifts. A file-backed pair runs the same session as fast as the machine
allows (tests, benchmarks, trying a routine without hardware); it can also couple the
speaker into the microphone (echo) and fail on cue, standing in for what cannot exist here.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import threading
import time
from typing import Iterator, List, Optional, Protocol, Tuple

import numpy as np

from voicecoach.audio import FRAME, RATE, PathLike, Resampler, read_wav, write_wav

MIC_STALL_SECONDS = 1.0
"""No frames from the microphone for this long means it is lost."""

SOURCE_CHECK_SECONDS = 0.5
"""How often a microphone read through PulseAudio checks that its source still exists."""

TimedFrame = Tuple[float, np.ndarray]


class DeviceError(RuntimeError):
    """A device that cannot be opened or stopped working; the message says what to do."""


class MicrophoneLost(DeviceError):
    """The microphone stopped delivering audio mid-session."""


class Speaker(Protocol):
    def write(self, frame: np.ndarray) -> None:
        """Play one frame; blocks as long as the device needs (this paces a live session)."""

    def behind(self, now: float) -> float:
        """How far real time has run ahead of session time `now` (s): a stalled loop catches
        up by dropping that much sound, so counts stay on the second of the wall clock."""

    def close(self) -> None: ...


class Microphone(Protocol):
    def frames(self, until: float) -> List[TimedFrame]:
        """Frames heard up to session time `until`, each with its start time; raises MicrophoneLost."""

    def close(self) -> None: ...


# -- files -------------------------------------------------------------------------------


class FileSpeaker:
    """Collects everything played into a WAV on the session's own timeline."""

    def __init__(self, path: Optional[PathLike]) -> None:
        self.path = path
        self._frames: List[np.ndarray] = []

    @property
    def written(self) -> int:
        return len(self._frames)

    def behind(self, now: float) -> float:
        return 0.0   # file time is session time

    def recent(self, index: int) -> np.ndarray:
        """Frame number `index` as played (silence before the start)."""
        return self._frames[index] if 0 <= index < len(self._frames) else np.zeros(FRAME, np.int16)

    def write(self, frame: np.ndarray) -> None:
        self._frames.append(frame)

    def close(self) -> None:
        if self.path is not None:
            write_wav(self.path, np.concatenate(self._frames) if self._frames else np.zeros(0))


class FileMicrophone:
    """Reads a WAV as the microphone, then silence; optionally hears the speaker too (echo)."""

    def __init__(self, path: Optional[PathLike], echo_from: Optional[FileSpeaker] = None,
                 echo_db: float = 0.0, echo_delay: float = 0.03) -> None:
        self._samples = read_wav(path) if path is not None else np.zeros(0, np.int16)
        self._echo = echo_from
        self._echo_gain = 10 ** (echo_db / 20)
        self._echo_delay = int(round(echo_delay * RATE / FRAME))
        self._next = 0

    def frames(self, until: float) -> List[TimedFrame]:
        out = []
        while (self._next + 1) * FRAME <= until * RATE + 1e-6:
            t = self._next * FRAME / RATE
            out.append((t, self._frame(self._next)))
            self._next += 1
        return out

    def _frame(self, i: int) -> np.ndarray:
        f = np.zeros(FRAME, np.float32)
        chunk = self._samples[i * FRAME:(i + 1) * FRAME]
        f[: len(chunk)] = chunk
        if self._echo is not None:
            f += self._echo.recent(i - self._echo_delay) * self._echo_gain
        return np.clip(f, -32768, 32767).astype(np.int16)

    def close(self) -> None:
        pass


class WallClock:
    """Session time 0 is the first write; `behind` compares session time with the wall clock."""

    _t0: Optional[float] = None
    _now = 0.0

    def _started(self) -> float:
        if self._t0 is None:
            self._t0 = time.monotonic()
        return self._t0

    def behind(self, now: float) -> float:
        self._now = now
        return 0.0 if self._t0 is None else time.monotonic() - self._t0 - now


class PacedSilence(WallClock):
    """A speaker that plays nothing in real time: `--text` sessions keep the live clock."""

    def write(self, frame: np.ndarray) -> None:
        delay = self._started() + self._now + FRAME / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def close(self) -> None:
        pass


# -- PyAudio -----------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """PortAudio probes ALSA and JACK on start and prints dozens of lines: hide them."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)
        os.close(devnull)


class AlsaMessages:
    """ALSA's own error messages ("ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred",
    dozens a session on a busy machine) are printed by libasound on the person's terminal, over
    the session's status line. A handler of our own takes them instead: underruns and overruns
    are counted, the last message kept."""

    underruns = 0
    overruns = 0
    last: Optional[str] = None
    _handler = None          # the ctypes callback: kept alive as long as libasound may call it

    @classmethod
    def install(cls) -> bool:
        """Route libasound's messages here; False where there is no libasound (no ALSA)."""
        if cls._handler is not None:
            return True
        import ctypes
        import ctypes.util
        name = ctypes.util.find_library("asound")
        if name is None:
            return False
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            return False
        # void handler(const char *file, int line, const char *function, int err, const char *fmt, ...):
        # the first variadic argument is read as a 6th (Linux passes it where a 6th would be) and
        # only where the format says it is a string ("%s occurred": "underrun" or "overrun")
        proto = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                 ctypes.c_char_p, ctypes.c_void_p)

        def handler(file, line, function, err, fmt, first):
            fmt = fmt or b""
            arg = ctypes.cast(first, ctypes.c_char_p).value or b"" if fmt.startswith(b"%s") and first else b""
            text = (fmt.replace(b"%s", arg, 1) if arg else fmt).decode(errors="replace")
            if "underrun" in text:
                cls.underruns += 1
            elif "overrun" in text:
                cls.overruns += 1
            cls.last = f"{(function or b'').decode(errors='replace')}: {text}"

        cls._handler = proto(handler)
        lib.snd_lib_error_set_handler(cls._handler)
        return True


def open_pyaudio():  # -> pyaudio.PyAudio
    """PyAudio, or a DeviceError naming the package when PortAudio is missing. ALSA's messages
    go to AlsaMessages from here on, JACK's (printed while PortAudio probes) nowhere."""
    try:
        import pyaudio
    except ImportError as exc:
        raise DeviceError("PortAudio/PyAudio is not installed: sudo apt-get install "
                          f"portaudio19-dev libportaudio2, then reinstall voicecoach ({exc})") from exc
    AlsaMessages.install()
    with _quiet_stderr():
        return pyaudio.PyAudio()


def list_devices(pa) -> List[dict]:
    """Every PortAudio device with what it can do."""
    return [pa.get_device_info_by_index(i) for i in range(pa.get_device_count())]


def find_device(pa, spec: Optional[str], kind: str) -> Optional[int]:
    """A device index from an index or a name substring; None = the system default.

    A name that PortAudio does not list but PulseAudio/PipeWire does (a sink or source name)
    is routed through the `pulse` device, since ALSA only shows that one device for them.
    """
    channels = "maxInputChannels" if kind == "input" else "maxOutputChannels"
    devices = [d for d in list_devices(pa) if d[channels] > 0]
    if spec is None or spec == "":
        return None
    if spec.isdigit():
        if any(d["index"] == int(spec) for d in devices):
            return int(spec)
        raise DeviceError(f"no {kind} device number {spec}: see `voicecoach devices`")
    for d in devices:
        if spec.lower() in d["name"].lower():
            return int(d["index"])
    pulse = [d for d in devices if d["name"] == "pulse"]
    if pulse and spec in _pulse_names(kind):
        os.environ["PULSE_SOURCE" if kind == "input" else "PULSE_SINK"] = spec
        return int(pulse[0]["index"])
    raise DeviceError(f"no {kind} device named like {spec!r}: see `voicecoach devices`")


def _pactl(*args: str) -> Optional[str]:
    """pactl's output, or None where there is no PulseAudio/PipeWire server to ask."""
    try:
        done = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _pulse_names(kind: str) -> List[str]:
    out = _pactl("list", "short", "sources" if kind == "input" else "sinks") or ""
    return [line.split("\t")[1] for line in out.splitlines() if "\t" in line]


def pulse_source(index: Optional[int], pa) -> Optional[str]:
    """The PulseAudio source a microphone stream will read, when it goes through PulseAudio.

    PulseAudio silently moves a stream whose source vanished (a USB mic unplugged) to another
    source, often the speaker's monitor: the coach would hear itself and not the person. So
    the microphone watches that its source still exists.
    """
    name = pa.get_device_info_by_index(index)["name"] if index is not None else "default"
    if name not in ("pulse", "default"):
        return None
    chosen = os.environ.get("PULSE_SOURCE") or (_pactl("get-default-source") or "").strip()
    return chosen or None


def pulse_sink(index: Optional[int], pa) -> Optional[str]:
    """The PulseAudio sink a speaker stream plays to, when it goes through PulseAudio.

    Like a source, a vanished sink has its streams moved silently to another sink: the coach
    would go on counting into a device the person cannot hear. So the speaker watches it."""
    name = pa.get_device_info_by_index(index)["name"] if index is not None else "default"
    if name not in ("pulse", "default"):
        return None
    chosen = os.environ.get("PULSE_SINK") or (_pactl("get-default-sink") or "").strip()
    return chosen or None


def _device_rate(pa, index: Optional[int], kind: str, channels: int) -> int:
    """16 kHz when the device takes it, else its own default rate (we resample)."""
    import pyaudio
    info = pa.get_device_info_by_index(index) if index is not None else (
        pa.get_default_input_device_info() if kind == "input" else pa.get_default_output_device_info())
    kwargs = {f"{kind}_device": index, f"{kind}_channels": channels, f"{kind}_format": pyaudio.paInt16}
    try:
        if pa.is_format_supported(RATE, **kwargs):
            return RATE
    except ValueError:
        pass
    return int(info["defaultSampleRate"])


class PulseWatch:
    """Watches, off the audio path (pactl can take over a second on a busy machine), that a
    PulseAudio sink or source still exists; `gone` says why once it does not. A pactl that
    answers nothing is not a vanished device."""

    def __init__(self, kind: str, name: str) -> None:
        self.gone: Optional[str] = None
        self._kind, self._name = kind, name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{kind}-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        what = "audio device" if self._kind == "output" else "audio source"
        while not self._stop.wait(SOURCE_CHECK_SECONDS):
            names = _pulse_names(self._kind)
            if names and self._name not in names:
                self.gone = f"the {what} {self._name} went away"
                return

    def stop(self) -> None:
        """Ends the watch and waits for it."""
        self._stop.set()
        self._thread.join(timeout=2)


class PyAudioSpeaker(WallClock):
    """A blocking PortAudio output stream fed 10 ms at a time, so a cut is heard at once."""

    def __init__(self, pa, device: Optional[str] = None) -> None:
        import pyaudio
        self._index = find_device(pa, device, "output")
        try:
            self.rate = _device_rate(pa, self._index, "output", 1)
            with _quiet_stderr():
                self._stream = pa.open(format=pyaudio.paInt16, channels=1, rate=self.rate, output=True,
                                       output_device_index=self._index,
                                       frames_per_buffer=int(FRAME * self.rate / RATE))
        except (OSError, ValueError) as exc:
            raise DeviceError(f"cannot open the speaker ({exc}): see `voicecoach devices`") from exc
        # one resampler for the whole stream: per-frame resampling clicks at every frame edge
        self._resampler = Resampler(RATE, self.rate) if self.rate != RATE else None
        self._sink = pulse_sink(self._index, pa)
        self._underruns_before = AlsaMessages.underruns
        self._watch = PulseWatch("output", self._sink) if self._sink else None

    @property
    def underruns(self) -> int:
        """Output underruns since this speaker opened, as ALSA reported them. (PortAudio's own
        underflow flag cannot be used: PyAudio closes the stream when it raises it.)"""
        return AlsaMessages.underruns - self._underruns_before

    @property
    def _gone(self) -> Optional[str]:
        return self._watch.gone if self._watch is not None else None

    def write(self, frame: np.ndarray) -> None:
        if self._gone is not None:
            raise DeviceError(f"the speaker stopped working ({self._gone})")
        if self._resampler is not None:
            frame = self._resampler.process(frame)
        self._started()
        try:
            self._stream.write(frame.astype("<i2").tobytes())
        except (OSError, ValueError) as exc:
            raise DeviceError(f"the speaker stopped working ({exc})") from exc

    def close(self) -> None:
        """Play what the resampler still holds (its last 1.6 ms, the end of the last word), then
        close the stream once it has played out."""
        if self._watch is not None:
            self._watch.stop()
        if self._resampler is not None and self._gone is None:
            with contextlib.suppress(OSError, ValueError):      # a failed device: close it anyway
                self._stream.write(self._resampler.flush().astype("<i2").tobytes())
        with contextlib.suppress(OSError, ValueError):
            self._stream.stop_stream()
            self._stream.close()


class PyAudioMicrophone:
    """Reads the device on its own thread into a queue; a read that fails or stalls is a loss."""

    def __init__(self, pa, device: Optional[str] = None) -> None:
        import pyaudio
        self._index = find_device(pa, device, "input")
        try:
            self.rate = _device_rate(pa, self._index, "input", 1)
            self._chunk = int(FRAME * self.rate / RATE)
            with _quiet_stderr():
                self._stream = pa.open(format=pyaudio.paInt16, channels=1, rate=self.rate, input=True,
                                       input_device_index=self._index, frames_per_buffer=self._chunk)
        except (OSError, ValueError) as exc:
            raise DeviceError(f"no usable microphone ({exc}): plug one in, pick it with --mic "
                              "(see `voicecoach devices`), or run with --no-listen") from exc
        self._resampler = Resampler(self.rate, RATE) if self.rate != RATE else None
        self._source = pulse_source(self._index, pa)
        self._queue: "queue.Queue[Tuple[float, np.ndarray]]" = queue.Queue()
        self._stop = threading.Event()
        self._error: Optional[str] = None
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._read_loop, name="mic", daemon=True)
        self._thread.start()
        # not on the reading thread: a read loop waiting for a slow pactl looked like a stall
        self._watch = PulseWatch("input", self._source) if self._source else None

    def _read_loop(self) -> None:
        pending = np.zeros(0, np.int16)
        lag = self._resampler.latency if self._resampler is not None else 0.0
        while not self._stop.is_set():
            try:
                raw = self._stream.read(self._chunk, exception_on_overflow=False)
            except (OSError, ValueError) as exc:
                self._error = str(exc)
                return
            self._last = time.monotonic()
            data = np.frombuffer(raw, "<i2")
            if self._resampler is not None:   # one stream: no clicks or drift at block edges
                data = self._resampler.process(data)
            pending = np.concatenate([pending, data])
            while len(pending) >= FRAME:   # stamped with when it was heard: the newest sample is now
                self._queue.put((self._last - lag - len(pending) / RATE, pending[:FRAME]))
                pending = pending[FRAME:]

    def frames(self, until: float) -> List[TimedFrame]:
        error = self._error or (self._watch.gone if self._watch is not None else None)
        if error is not None:
            raise MicrophoneLost(f"the microphone stopped working ({error})")
        if time.monotonic() - self._last > MIC_STALL_SECONDS:
            raise MicrophoneLost("the microphone stopped delivering audio")
        now, timed = time.monotonic(), []
        with contextlib.suppress(queue.Empty):
            while True:   # session time of a frame: `until` is now, less the frame's age
                heard, frame = self._queue.get_nowait()
                timed.append((until - (now - heard), frame))
        return timed

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """PulseAudio's plugin can take ~2 s to deliver the first frame: wait before the session."""
        deadline = time.monotonic() + timeout
        while self._queue.empty() and self._error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        ready = not self._queue.empty()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._last = time.monotonic()
        return ready

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        if self._watch is not None:
            self._watch.stop()
        with contextlib.suppress(OSError, ValueError):
            self._stream.stop_stream()
            self._stream.close()


def play(speaker: Speaker, samples: np.ndarray) -> None:
    """Play a whole clip 10 ms at a time (the speakers' unit), then close the speaker."""
    try:
        padded = np.concatenate([samples, np.zeros(-len(samples) % FRAME, np.int16)])
        for i in range(0, len(padded), FRAME):
            speaker.write(padded[i:i + FRAME])
    finally:
        speaker.close()
