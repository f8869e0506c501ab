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
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, TextIO

import numpy as np

from voicecoach.audio import RATE
from voicecoach.coach import Coach, Ears, Heard, Result, SpotterEars, TypedEars
from voicecoach.devices import (DeviceError, FileMicrophone, FileSpeaker, PacedSilence,
                                PyAudioMicrophone, PyAudioSpeaker, open_pyaudio)
from voicecoach.history import History
from voicecoach.instance import STOP_SIGNAL, SessionLock
from voicecoach.routine import Routine, builtin_routine, load_routine, phrases, vocabulary
from voicecoach.session import Command, Earcon, Ended, RoundDone, Say, Session, State
from voicecoach.speech import EARCONS, Clip, Voice, VoiceSettings, count_words, earcon

COUNT_MAX_SECONDS = 0.85
"""A count must end before the next one starts, with a little air between them."""


@dataclass(frozen=True)
class RunOptions:
    routine: Optional[Path] = None
    mic: Optional[str] = None
    speaker: Optional[str] = None
    mic_file: Optional[Path] = None
    speaker_file: Optional[Path] = None
    echo_db: Optional[float] = None
    mic_fail_at: Optional[float] = None
    speaker_fail_at: Optional[float] = None
    text: bool = False
    listen: bool = True
    db: Optional[Path] = None
    voice: Optional[str] = None
    rate: Optional[int] = None
    volume: Optional[float] = None
    cache_dir: Optional[Path] = None
    timeline: Optional[Path] = None
    engine: str = "auto"


def load(path: Optional[Path]) -> Routine:
    return load_routine(path) if path is not None else builtin_routine()


def voice_settings(routine: Routine, opts: RunOptions) -> VoiceSettings:
    """Command line over routine file over engine defaults."""
    v = routine.voice
    return VoiceSettings(voice=opts.voice or v.voice, rate=opts.rate or v.rate,
                         volume=opts.volume if opts.volume is not None else v.volume)


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
                 timeline: Optional[TextIO] = None) -> None:
        self.lines, self.status, self.timeline = lines, status, timeline

    def command(self, cmd: Command, session: Session) -> None:
        if self.timeline is not None:
            record = {"type": type(cmd).__name__.lower(), **_fields(cmd)}
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


def run(opts: RunOptions, out: TextIO = sys.stdout) -> Result:
    """Run one session; raises RoutineError, DeviceError, AlreadyRunning before it starts."""
    routine = load(opts.routine)
    with SessionLock(), contextlib.ExitStack() as stack:
        files = opts.mic_file is not None or opts.speaker_file is not None
        if opts.text:
            speaker, clips = PacedSilence(), text_clips(routine)
            ears: Optional[Ears] = TypedEars({k.phrase: k.action for k in vocabulary(routine)}) if opts.listen else None
            earcons = {n: np.zeros(RATE // 10, np.int16) for n in EARCONS}
        else:
            clips = render(routine, voice_settings(routine, opts), opts.cache_dir)
            earcons = {n: earcon(n) for n in EARCONS}
            speaker, ears = _devices(routine, opts, files, stack)
        stack.callback(speaker.close)
        if ears is not None:
            stack.callback(ears.close)
        history = History(opts.db)
        stack.callback(history.close)
        timeline = stack.enter_context(open(opts.timeline, "w")) if opts.timeline else None
        status = sys.stderr if sys.stderr.isatty() and not opts.text else None
        coach = Coach(routine, clips, earcons, speaker, lambda k: count_words(k)[-1], ears, history,
                      observer=Printer(out if opts.text else None, status, timeline))
        with stop_on_signals(coach.stop_flag):
            result = coach.run()
        history.close()  # a last try to save: what is still pending now is lost with the process
        result.unsaved = history.pending
        return result


def _devices(routine: Routine, opts: RunOptions, files: bool, stack: contextlib.ExitStack):
    """The speaker and the ears: files, or PyAudio devices (microphone first, it is slow to start)."""
    from voicecoach.hearing.engines import make_spotter   # here: `--text` and `render` need no engine
    from voicecoach.hearing.worker import ProcessSpotter
    if files:
        speaker = FileSpeaker(opts.speaker_file, fail_at=opts.speaker_fail_at)
        if not opts.listen:
            return speaker, None
        mic = FileMicrophone(opts.mic_file, echo_from=speaker if opts.echo_db is not None else None,
                             echo_db=opts.echo_db or 0.0, fail_at=opts.mic_fail_at)
        return speaker, SpotterEars(mic, make_spotter(vocabulary(routine), opts.engine), threaded=False)
    pa = open_pyaudio()
    stack.callback(pa.terminate)
    ears = None
    if opts.listen:
        spotter = ProcessSpotter(vocabulary(routine), opts.engine)   # loads while the mic opens
        stack.callback(spotter.close)
        mic = PyAudioMicrophone(pa, opts.mic)
        if not mic.wait_ready():
            mic.close()
            raise DeviceError("the microphone delivers no audio: check it with `voicecoach doctor`, "
                              "or run with --no-listen")
        try:
            spotter.wait_ready()
        except ValueError:
            mic.close()
            raise
        ears = SpotterEars(mic, spotter, threaded=True)
    return PyAudioSpeaker(pa, opts.speaker), ears


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
