"""`voicecoach doctor` and `voicecoach devices`: what a person runs when the coach is silent or deaf.

Each check prints one PASS/FAIL/INFO line that says what was found and what to do about it,
in the order things go wrong on a Pi: speech engine, PortAudio, speaker, microphone level,
the spotter hearing a real word through the real microphone, how loud the speaker is in that
microphone against the person's voice, and echo cancellation.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
from typing import List, Optional, TextIO, Tuple

import numpy as np

from voicecoach.audio import FRAME, RATE, rms_dbfs
from voicecoach.devices import (DeviceError, PyAudioMicrophone, PyAudioSpeaker, list_devices,
                                open_pyaudio, play)

SILENT_DBFS = -55.0
"""Loudest 10 ms of the test below this: a muted or wrong microphone (a room is never this quiet)."""
CLIPPED_SHARE = 0.001
"""More than this share of samples at full scale: the gain is too high and words distort."""
TEST_LINE = "Hello. This is your stretching coach."
ECHO_OVER_VOICE_DB = 10.0
"""The coach hears a person down to about 10 dB under its own voice in the microphone
(bench/selftrigger.py --echo-db): louder than that, it cannot tell them from its clipped echo."""
CLIPPED_ECHO_SHARE = 0.05
"""More than this share of the microphone's samples at full scale while the speaker plays is
more than the coach was measured to cope with, and more than its echo canceller can size from
the few samples an overdriven input leaves unclipped (docs/benchmarks.md)."""
SETTLE_S = 0.3
"""After the speaker's last sample, the sound server's buffers still carry its echo to the mic."""


# -- PulseAudio / PipeWire names ------------------------------------------------------------


def pactl(*args: str) -> Optional[str]:
    """pactl's output in the C locale (labels are translated otherwise); None without a server."""
    try:
        r = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=5,
                           env=dict(os.environ, LC_ALL="C"))
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def pulse_devices(kind: str) -> List[Tuple[str, str]]:
    """(name, description) of every PulseAudio/PipeWire sink ("sinks") or source ("sources")."""
    out = pactl("list", kind) or ""
    found: List[Tuple[str, str]] = []
    name = None
    for line in (raw.strip() for raw in out.splitlines()):
        if line.startswith("Name: "):
            name = line[6:]
        elif line.startswith("Description: ") and name is not None:
            found.append((name, line[13:]))
            name = None
    return found


def print_devices(out: TextIO = sys.stdout) -> int:
    """`voicecoach devices`: PortAudio devices, then the sound server's names (which PortAudio hides)."""
    pa = open_pyaudio()
    try:
        print("PortAudio devices (--mic/--speaker take the number or part of the name):", file=out)
        for d in list_devices(pa):
            kinds = [k for k, n in (("in", d["maxInputChannels"]), ("out", d["maxOutputChannels"])) if n]
            print(f"  {d['index']:3d}  {'/'.join(kinds):6s} {int(d['defaultSampleRate']):6d} Hz  {d['name']}",
                  file=out)
    finally:
        pa.terminate()
    info = pactl("info") or ""
    defaults = [line.split(": ", 1)[1] for line in info.splitlines() if line.startswith("Default ")]
    for kind, title, option in (("sinks", "speakers", "--speaker"), ("sources", "microphones", "--mic")):
        devices = pulse_devices(kind)
        if devices:
            print(f"PulseAudio/PipeWire {title} ({option} NAME):", file=out)
        for name, description in devices:
            note = "  (default)" if name in defaults else ""
            if name.endswith(".monitor"):
                note += "  (what that speaker plays, not a microphone)"
            print(f"  {name}  {description}{note}", file=out)
    from voicecoach.paths import config_file
    print(f"Set them once in {config_file()} (mic: NAME, speaker: NAME); "
          "check them with `voicecoach doctor`.", file=out)
    return 0


# -- doctor ----------------------------------------------------------------------------------


class Report:
    """Prints one line per check and remembers whether any failed."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.failed = out, 0

    def line(self, status: str, what: str, detail: str) -> None:
        self.failed += status == "FAIL"
        print(f"{status:4s}  {what}: {detail}", file=self.out, flush=True)


def doctor(mic: Optional[str], speaker: Optional[str], seconds: float, word: str = "pain",
           voice: Optional[str] = None, out: TextIO = sys.stdout) -> int:
    """Run every check; 0 when all pass, 1 when any fails."""
    report = Report(out)
    clip = check_speech(report, voice)
    try:
        pa = open_pyaudio()
    except DeviceError as exc:
        report.line("FAIL", "PortAudio", str(exc))
        return 1
    report.line("PASS", "PortAudio", f"{pa.get_device_count()} devices (`voicecoach devices` lists them)")
    from voicecoach.hearing import sphinx_available
    from voicecoach.hearing.embedding import available
    from voicecoach.hearing.engines import make_spotter
    from voicecoach.hearing.words import default_keywords
    # built before the microphone opens: loading the models holds the GIL long enough for the
    # microphone's reader thread to overflow its buffer
    spotter = make_spotter(default_keywords())
    if not available():
        report.line("INFO", "hearing", "onnxruntime is not installed (no build for a 32-bit OS): the spotter "
                    "hears with its log-mel nets alone, which miss more words; a 64-bit OS adds the speech-embedding head")
    if not sphinx_available():
        report.line("INFO", "hearing", "pocketsphinx is not installed (left out on a 32-bit OS: PyPI has no "
                    "build of it there): the default words are heard, a routine with words of its own is not; "
                    "VOICECOACH_EXTRAS=sphinx scripts/install adds it (pip compiles it, which takes a while)")
    microphone = None
    try:
        try:
            microphone = PyAudioMicrophone(pa, mic)  # opened first: it takes a while to deliver
        except DeviceError as exc:
            report.line("FAIL", f"microphone {mic or '(default)'}", str(exc))
        echo = check_speaker(report, pa, speaker, clip, microphone)
        if microphone is not None and check_level(report, microphone, mic, seconds, out):
            voice = check_spotter(report, microphone, spotter, seconds, word, out)
            check_coupling(report, echo, voice)
        else:
            report.line("INFO", "hearing", "not tested: the microphone is not usable")
    finally:
        if microphone is not None:
            microphone.close()
        pa.terminate()
    check_echo_cancel(report)
    print(f"{'all checks passed' if not report.failed else f'{report.failed} check(s) failed'}", file=out)
    return 1 if report.failed else 0


def check_speech(report: Report, voice: Optional[str]):
    """espeak-ng through pyttsx3: render a line (cached after the first time)."""
    from voicecoach.speech import SpeechEngineMissing, Voice, VoiceSettings
    try:
        clip = Voice(VoiceSettings(voice=voice)).render(TEST_LINE)
    except (SpeechEngineMissing, OSError, RuntimeError) as exc:
        report.line("FAIL", "espeak-ng", f"{exc}: sudo apt-get install espeak-ng libespeak-ng1")
        return None
    report.line("PASS", "espeak-ng", f"rendered a test line ({clip.duration:.1f} s)")
    return clip


def check_speaker(report: Report, pa, spec: Optional[str], clip,
                  microphone: Optional[PyAudioMicrophone]) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Play the start chime and a spoken line; a person must judge whether they heard them.

    Returns what was played and what the microphone heard from the first sample played on (its
    echo, after the audio stack's delay), or None if the microphone was not heard meanwhile."""
    from voicecoach.speech import earcon
    what = f"speaker {spec or '(default)'}"
    sound = [earcon("start"), np.zeros(RATE // 4, np.int16)] + ([clip.samples] if clip is not None else [])
    samples = np.concatenate(sound)
    try:
        out = PyAudioSpeaker(pa, spec)
        listening = microphone is not None and microphone.wait_ready()   # from here on, heard with it
        play(out, samples)
    except DeviceError as exc:
        report.line("FAIL", what, str(exc))
        return None
    report.line("PASS", what, f"played a chime and a spoken line ({len(samples) / RATE:.1f} s): "
                              "not heard? check the volume (alsamixer) and --speaker")
    if out.underruns:
        report.line("WARN", "audio underruns", f"the speaker ran dry {out.underruns} time(s) in "
                    f"{len(samples) / RATE:.1f} s: the machine is too busy for clean sound (counts "
                    "may be cut short); close other programs")
    if not listening:
        return None
    time.sleep(SETTLE_S)
    try:
        frames = [frame for _, frame in microphone.frames(0.0)]
    except DeviceError:
        return None   # check_level names the fault
    return (samples, np.concatenate(frames)) if frames else None


def _listen(microphone: PyAudioMicrophone, seconds: float, each) -> None:
    """Feed `each(frame)` the microphone's frames for `seconds`, or until it returns True."""
    if not microphone.wait_ready():
        raise DeviceError("the microphone delivers no audio")
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        for _, frame in microphone.frames(time.monotonic() - t0):
            if each(frame):
                return
        time.sleep(0.02)


def at_full_scale(samples: np.ndarray) -> np.ndarray:
    """Which int16 samples are at full scale: clipped, for the level meter and the echo alike."""
    return np.abs(samples.astype(np.int32)) >= 32767


def check_level(report: Report, microphone: PyAudioMicrophone, spec: Optional[str], seconds: float,
                out: TextIO) -> bool:
    """A level meter for `seconds`: silence and clipping fail. True when the mic is usable."""
    what = f"microphone {spec or '(default)'}"
    print(f"      speak or clap for {seconds:g} s...", file=out, flush=True)
    levels: List[float] = []
    clipped = [0, 0]
    live = out.isatty()

    def meter(frame: np.ndarray) -> bool:
        levels.append(rms_dbfs(frame))
        clipped[0] += int(np.count_nonzero(at_full_scale(frame)))
        clipped[1] += len(frame)
        if live and len(levels) % 10 == 0:
            bar = "#" * int(max(0.0, 60 + max(levels[-10:])) / 2)
            out.write(f"\r\033[K      level {max(levels[-10:]):6.1f} dBFS {bar}")
            out.flush()
        return False

    try:
        _listen(microphone, seconds, meter)
    except DeviceError as exc:
        report.line("FAIL", what, f"{exc}: pick another with --mic (see `voicecoach devices`)")
        return False
    if live:
        out.write("\r\033[K")
    loudest = max(levels, default=-120.0)
    quiet = float(np.percentile(levels, 10)) if levels else -120.0
    share = clipped[0] / max(clipped[1], 1)
    detail = f"loudest {loudest:.0f} dBFS, background {quiet:.0f} dBFS"
    if loudest < SILENT_DBFS:
        report.line("FAIL", what, f"silent ({detail}): is it muted, or the wrong device? "
                                  "Check alsamixer / pavucontrol and --mic")
        return False
    if share > CLIPPED_SHARE:
        report.line("FAIL", what, f"clipping ({share:.1%} of samples at full scale; {detail}): "
                                  "turn the microphone gain down")
        return True
    report.line("PASS", what, detail)
    return True


def check_spotter(report: Report, microphone: PyAudioMicrophone, spotter, seconds: float, word: str,
                  out: TextIO) -> Optional[np.ndarray]:
    """The real test: the spotter hears the word, spoken by the person, through this microphone.

    The audio is recorded first and spotted afterwards: verifying a candidate can hold the GIL
    long enough for the microphone's reader thread to overflow and stall. Returns the recording
    when the word was heard in it (the person's voice as the microphone gets it)."""
    frames: List[np.ndarray] = []
    print(f'      say "{word}" now ({seconds:g} s)...', file=out, flush=True)
    try:
        _listen(microphone, seconds, lambda frame: frames.append(frame))
    except DeviceError as exc:
        report.line("FAIL", "hearing", str(exc))
        return None
    heard = []
    for frame in frames + [np.zeros(FRAME, np.int16)] * 50:  # 0.5 s of silence flushes the last word
        heard.extend(spotter.process(frame))
        if any(d.word == word for d in heard):
            break
    hit = next((d for d in heard if d.word == word), None)
    others = ", ".join(sorted({d.word for d in heard if d.word != word}))
    if hit is not None:
        report.line("PASS", "hearing", f"heard {word!r} ({hit.action}) {hit.start:.1f} s in, score {hit.score:.2f}"
                                       + (f"; also heard {others}" if others else ""))
        return np.concatenate(frames)
    report.line("FAIL", "hearing", f"did not hear {word!r}" + (f" (heard {others})" if others else "")
                + ": speak up or move closer, check the level above, then try again")
    return None


def frame_levels(samples: np.ndarray) -> List[float]:
    """Each 10 ms's level in dBFS; the loudest is a voice's peak level, comparable between a
    short word and a long line."""
    return [rms_dbfs(f) for f in samples[:len(samples) // FRAME * FRAME].reshape(-1, FRAME)]


def echo_in(played: np.ndarray, heard: np.ndarray) -> np.ndarray:
    """What the coach's own echo canceller removes from `heard` as the echo of `played`: the
    speaker's sound in the microphone, without anything else the microphone heard meanwhile."""
    from voicecoach.hearing.echo import EchoCanceller
    canceller = EchoCanceller(seconds=len(heard) / RATE + 1.0)
    played = np.concatenate([played, np.zeros(max(0, len(heard) - len(played)), np.int16)])
    removed = []
    for i in range(0, len(heard) // FRAME * FRAME, FRAME):
        t = i / RATE
        canceller.played(t, played[i:i + FRAME])
        mic = heard[i:i + FRAME]
        removed.append(mic.astype(np.int32) - canceller.clean(t, mic))
    return np.concatenate(removed) if removed else np.zeros(0, np.int32)


def check_coupling(report: Report, echo: Optional[Tuple[np.ndarray, np.ndarray]],
                   voice: Optional[np.ndarray]) -> None:
    """How loud the speaker is in the microphone against the person's word, both as heard there.

    The coach subtracts its own voice and tells a person from what is left, down to about
    ECHO_OVER_VOICE_DB under its echo; a speaker beside the microphone can be louder than that."""
    what = "speaker in the microphone"
    if echo is None or voice is None:
        report.line("INFO", what, "not measured (needs the speaker's echo and your word above)")
        return
    played, heard = echo
    coach, person = max(frame_levels(echo_in(played, heard)), default=-120.0), max(frame_levels(voice))
    clipped = float(np.mean(at_full_scale(heard)))
    if clipped > CLIPPED_ECHO_SHARE:
        report.line("FAIL", what, f"the microphone clips while the speaker plays ({clipped:.1%} of samples): the "
                                  "coach would hear itself over you. Turn the speaker down or move it away")
        return
    if coach < SILENT_DBFS:
        report.line("PASS", what, "the coach's voice is not heard in the microphone")
        return
    over = coach - person
    detail = (f"the coach's voice reaches it {abs(over):.0f} dB {'louder than' if over > 0 else 'under'} yours "
              f"(loudest {coach:.0f} vs {person:.0f} dBFS" + (f"; {clipped:.1%} clipped" if clipped else "") + ")")
    if over > ECHO_OVER_VOICE_DB:
        report.line("FAIL", what, f"{detail}: over {ECHO_OVER_VOICE_DB:.0f} dB it cannot tell you from its own "
                                  "voice. Turn the speaker down (alsamixer) or move it away from the microphone")
    else:
        report.line("PASS", what, f"{detail}: it hears you up to {ECHO_OVER_VOICE_DB:.0f} dB under its own voice")


def check_echo_cancel(report: Report) -> None:
    """Information only: the coach discounts its own words, echo cancellation just helps."""
    modules = pactl("list", "modules", "short")
    if modules is None:
        report.line("INFO", "echo cancellation", "no PulseAudio/PipeWire server: not available "
                                                 "(the coach still ignores its own words)")
    elif "module-echo-cancel" in modules:
        report.line("PASS", "echo cancellation", "module-echo-cancel is loaded: pick its source with --mic")
    elif _echo_cancel_installed():
        report.line("INFO", "echo cancellation", "available, not loaded: "
                    "pactl load-module module-echo-cancel aec_method=webrtc (see the README, Echo cancellation)")
    else:
        report.line("INFO", "echo cancellation", "not available in this sound server")


def _echo_cancel_installed() -> bool:
    patterns = ("/usr/lib/pulse-*/modules/module-echo-cancel.so",
                "/usr/lib/*/pulse-*/modules/module-echo-cancel.so",
                "/usr/lib/*/pipewire-0.3/libpipewire-module-echo-cancel.so")
    return any(glob.glob(p) for p in patterns)
