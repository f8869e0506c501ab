"""`voicecoach run`: from options to a finished session and its exit code.

Everything that can fail before the first word (routine, devices, speech engine, a session
already running) fails here with one clear message, before anything is spoken.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, TextIO, Tuple

import numpy as np

from voicecoach.audio import RATE
from voicecoach.coach import Coach, Ears, Heard, Result, SpotterEars, TypedEars
from voicecoach.devices import (DeviceError, FileMicrophone, FileSpeaker, Microphone, PacedSilence,
                                PyAudioMicrophone, PyAudioSpeaker, Speaker, open_pyaudio)
from voicecoach.hearing import EngineMissing
from voicecoach.history import History
from voicecoach.instance import STOP_SIGNAL, SessionLock
from voicecoach.priority import audio_priority, raise_audio_priority
from voicecoach.routine import Routine, builtin_routine, load_routine, phrases, vocabulary
from voicecoach.session import Command, Earcon, Ended, RoundDone, Say, Session, State
from voicecoach.settings import DeviceSettings, OutputSettings, PersonSettings
from voicecoach.speech import EARCONS, Clip, Voice, VoiceSettings, count_words, earcon

COUNT_MAX_SECONDS = 0.85
"""A count must end before the next one starts, with a little air between them."""


Wrap = Callable[[Speaker, Optional[Microphone]], Tuple[Speaker, Optional[Microphone]]]
"""Given the opened speaker and microphone, the ones the session uses: the seam through which
the tests' rig (tests/rig.py) injects device faults; the product never wraps."""


def session_phrases(routine: Routine) -> List[str]:
    """Everything a session of this routine can say, counts included."""
    return list(dict.fromkeys(phrases(routine) + count_words(routine.hold_seconds)))


def render(routine: Routine, settings: VoiceSettings, cache_dir: Optional[Path] = None) -> Dict[str, object]:
    """Render every phrase before the session starts, so nothing is synthesized mid-session."""
    counts = count_words(routine.hold_seconds)
    return Voice(settings, cache_dir=cache_dir).render_all(
        session_phrases(routine), max_seconds={c: COUNT_MAX_SECONDS for c in counts})


def text_clips(routine: Routine) -> Dict[str, Clip]:
    """`--text` mode speaks nothing: each phrase is silence as long as it would take to say."""
    counts = set(count_words(routine.hold_seconds))
    return {t: Clip(t, np.zeros(int(RATE * (0.6 if t in counts else max(0.5, 0.32 * len(t.split())))),
                                np.int16), ())
            for t in session_phrases(routine)}


class Printer:
    """Observer: `--text` cue lines on stdout, the terminal status line, a JSON-lines timeline."""

    def __init__(self, lines: Optional[TextIO] = None, status: Optional[TextIO] = None,
                 timeline: Optional[TextIO] = None, audio: Optional[Callable[[], dict]] = None) -> None:
        self.lines, self.status, self.timeline, self.audio = lines, status, timeline, audio

    def command(self, cmd: Command, session: Session) -> None:
        if self.timeline is not None:
            record = {"type": type(cmd).__name__.lower(), **_fields(cmd)}
            if isinstance(cmd, Ended) and self.audio is not None:
                record.update(self.audio())
            self.timeline.write(json.dumps(record) + "\n")
            self.timeline.flush()
        if self.lines is not None and isinstance(cmd, (Say, Earcon)):
            what = cmd.text if isinstance(cmd, Say) else f"[{cmd.name}]"
            print(f"{cmd.at:8.2f}  {what}", file=self.lines, flush=True)
        if self.lines is not None and isinstance(cmd, (RoundDone, Ended)):
            print(f"{cmd.at:8.2f}  # {_describe(cmd)}", file=self.lines, flush=True)
        if self.status is not None and isinstance(cmd, Say):
            where = session.where(cmd.at)
            if session.state is State.HOLD and ", second " in where:  # the countdown: "second 3 of 10"
                where += f" of {session.routine.hold_seconds}"
            self.status.write("\r\033[K" + _fit(f"{where}: {cmd.text}", self.status))
            self.status.flush()
        if self.status is not None and isinstance(cmd, Ended):
            self.status.write("\r\033[K")

    def heard(self, heard: Heard, discounted: bool) -> None:
        if self.timeline is not None:
            self.timeline.write(json.dumps({"type": "discounted" if discounted else "heard", "word": heard.word,
                                            "start": heard.start, "at": heard.end,
                                            "echo_db": heard.echo_db}) + "\n")


def _fit(line: str, stream: TextIO) -> str:
    """Keep the status to one terminal row: a wrapped line cannot be rewritten in place by \\r."""
    try:
        width = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        width = 80
    return line if len(line) < width else line[:max(width - 2, 1)] + "…"


def _fields(cmd: Command) -> dict:
    d = dataclasses.asdict(cmd)
    if isinstance(cmd, Ended):
        d["outcome"] = cmd.outcome.value
    return d


def _describe(cmd: Command) -> str:
    if isinstance(cmd, RoundDone):
        return f"round {cmd.round_no} done: " + ", ".join(f"{h.side} {h.seconds:.2f} s" for h in cmd.holds)
    assert isinstance(cmd, Ended)
    return f"session {cmd.outcome.value}" + (f" ({cmd.word}, {cmd.where})" if cmd.word else "")


@contextlib.contextmanager
def stop_on_signals(flag: threading.Event) -> Iterator[None]:
    """SIGUSR1 (`voicecoach stop`), SIGTERM and Ctrl-C all stop the session like the word stop."""
    handled = (STOP_SIGNAL, signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.signal(s, lambda *_: flag.set()) for s in handled}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run(person: PersonSettings, devices: DeviceSettings = DeviceSettings(),
        outputs: OutputSettings = OutputSettings(), out: TextIO = sys.stdout,
        wrap: Optional[Wrap] = None) -> Result:
    """`voicecoach run`: open the devices the settings name and run one session on them;
    raises RoutineError, DeviceError, AlreadyRunning before it starts."""
    routine = load_routine(person.routine) if person.routine is not None else builtin_routine()
    flag = threading.Event()
    # the handlers come before the lock that tells `voicecoach stop` our pid: a stop while the
    # speech renders or the devices open (seconds on a busy Pi) then stops the session at its
    # first frame, where SIGUSR1's default action would kill the process
    with stop_on_signals(flag), SessionLock(), contextlib.ExitStack() as stack:
        if devices.text:
            speaker, clips = PacedSilence(), text_clips(routine)
            ears: Optional[Ears] = TypedEars({k.phrase: k.action for k in vocabulary(routine)}) \
                if person.listen else None
            earcons = {n: np.zeros(RATE // 10, np.int16) for n in EARCONS}
        else:
            clips = render(routine, person.voice_for(routine), outputs.cache_dir)
            earcons = {n: earcon(n) for n in EARCONS}
            speaker, ears = _devices(routine, person, devices, stack, wrap)
        lines = out if devices.text else None
        return _session(routine, clips, earcons, speaker, ears, outputs, stack, flag, lines)


def run_session(routine: Routine, speaker: Speaker, microphone: Optional[Microphone] = None, *,
                person: PersonSettings = PersonSettings(), outputs: OutputSettings = OutputSettings(),
                live: bool = True) -> Result:
    """One session of `routine` on devices the caller opened; it closes them when it ends.

    No microphone, or person.listen false: voice stop is off, and the session says so first.
    live: real-time devices, so the spotter runs in a process of its own; False for file devices
    (devices.FileSpeaker, FileMicrophone), which run in lockstep, exactly repeatable.
    Raises AlreadyRunning if a session runs; SIGUSR1, SIGTERM and Ctrl-C stop it like "stop".
    """
    flag = threading.Event()
    with stop_on_signals(flag), SessionLock(), contextlib.ExitStack() as stack:
        clips = render(routine, person.voice_for(routine), outputs.cache_dir)
        ears = _ears(routine, person, microphone, live, stack) if microphone is not None else None
        return _session(routine, clips, {n: earcon(n) for n in EARCONS}, speaker, ears, outputs, stack, flag)


def _session(routine: Routine, clips: Dict[str, Clip], earcons: Dict[str, np.ndarray], speaker: Speaker,
             ears: Optional[Ears], outputs: OutputSettings, stack: contextlib.ExitStack,
             stop_flag: threading.Event, lines: Optional[TextIO] = None) -> Result:
    """The coach on opened devices, its history and timeline; `lines`: the `--text` cue lines;
    `stop_flag`: set by the signal handlers (`stop_on_signals`)."""
    stack.callback(speaker.close)
    if ears is not None:
        stack.callback(ears.close)
    history = History(outputs.db)
    stack.callback(history.close)
    timeline = stack.enter_context(open(outputs.timeline, "w")) if outputs.timeline else None
    status = sys.stderr if sys.stderr.isatty() and lines is None else None
    # how the audio path kept up, on the timeline's "ended" line: a busy machine shows there
    audio = ((lambda: {"underruns": speaker.underruns, "priority": audio_priority()})  # type: ignore[attr-defined]
             if hasattr(speaker, "underruns") else None)
    coach = Coach(routine, clips, earcons, speaker, lambda k: count_words(k)[-1], ears, history,
                  stop_flag=stop_flag, observer=Printer(lines, status, timeline, audio))
    result = coach.run()
    result.underruns = getattr(speaker, "underruns", 0)
    history.close()  # a last try to save: what is still pending now is lost with the process
    result.unsaved = history.pending
    return result


def _devices(routine: Routine, person: PersonSettings, devices: DeviceSettings, stack: contextlib.ExitStack,
             wrap: Optional[Wrap]) -> Tuple[Speaker, Optional[Ears]]:
    """The speaker and the ears: files, or PyAudio devices (microphone first, it is slow to start)."""
    wrap = wrap or (lambda speaker, mic: (speaker, mic))
    if devices.files:
        file_speaker = FileSpeaker(devices.speaker_file)
        mic = None
        if person.listen:
            mic = FileMicrophone(devices.mic_file, echo_from=file_speaker if devices.echo_db is not None else None,
                                 echo_db=devices.echo_db or 0.0)
        speaker, mic = wrap(file_speaker, mic)
        return speaker, _ears(routine, person, mic, False, stack) if mic is not None else None
    raise_audio_priority()   # before the spotter, the streams and their threads: they inherit it (the spotter not)
    pa = open_pyaudio()
    stack.callback(pa.terminate)
    live_mic: Optional[Microphone] = None
    if person.listen:
        spotter = _spotter(routine, person, live=True, stack=stack)   # loads while the mic opens
        live_mic = PyAudioMicrophone(pa, devices.mic)
        if not live_mic.wait_ready():
            live_mic.close()
            raise DeviceError("the microphone delivers no audio: check it with `voicecoach doctor`, "
                              "or run with --no-listen")
        try:
            spotter.wait_ready()
        except (ValueError, EngineMissing):
            live_mic.close()
            raise
    speaker, live_mic = wrap(PyAudioSpeaker(pa, devices.speaker), live_mic)
    return speaker, SpotterEars(live_mic, spotter, threaded=True) if live_mic is not None else None


def _spotter(routine: Routine, person: PersonSettings, live: bool, stack: contextlib.ExitStack):
    """The routine's spotter; live, in a child process (hearing/worker.py) closed with the stack."""
    from voicecoach.hearing.engines import make_spotter   # here: `--text` and `render` need no engine
    from voicecoach.hearing.worker import ProcessSpotter
    if not live:
        return make_spotter(vocabulary(routine), person.engine)
    spotter = ProcessSpotter(vocabulary(routine), person.engine)
    stack.callback(spotter.close)
    return spotter


def _ears(routine: Routine, person: PersonSettings, mic: Microphone, live: bool,
          stack: contextlib.ExitStack) -> Optional[Ears]:
    """The microphone and the routine's spotter; None (the microphone closed) when the person
    turned listening off."""
    if not person.listen:
        stack.callback(mic.close)
        return None
    spotter = _spotter(routine, person, live, stack)
    if live:
        spotter.wait_ready()
    return SpotterEars(mic, spotter, threaded=live)


def listen_live(spotter, mic_name: Optional[str], seconds: Optional[float], out: TextIO = sys.stdout) -> int:
    """`voicecoach listen` on the microphone: one JSON line per detection until Ctrl-C or `seconds`."""
    import time
    pa = open_pyaudio()
    mic = PyAudioMicrophone(pa, mic_name)
    flag = threading.Event()
    try:
        with stop_on_signals(flag):
            if not mic.wait_ready():
                raise DeviceError("the microphone delivers no audio: check it with `voicecoach doctor`")
            deadline = time.monotonic() + seconds if seconds else None
            while not flag.is_set() and (deadline is None or time.monotonic() < deadline):
                for _, frame in mic.frames(time.monotonic()):
                    for d in spotter.process(frame):
                        out.write(json.dumps({"file": None, "word": d.word, "action": d.action,
                                              "t": round(d.t, 3), "score": round(d.score, 2)}) + "\n")
                        out.flush()
                time.sleep(0.01)
    finally:
        mic.close()
        pa.terminate()
    return 0
