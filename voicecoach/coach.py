"""One loop that runs a session: session commands in, speaker frames out, heard words back in.

Each turn of the loop renders 10 ms of speaker signal; the speaker's sample count is the clock.
What is heard arrives as detections with session times, and a word the coach itself was saying
at that moment is discounted, so the coach never stops on its own voice.
"""

from __future__ import annotations

import queue
from collections import deque
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Deque, Dict, List, Mapping, Optional, Protocol, TextIO

import numpy as np

from voicecoach.audio import FRAME_SECONDS, RATE
from voicecoach.devices import DeviceError, Microphone, MicrophoneLost, Speaker
from voicecoach.hearing.echo import EchoCanceller, mostly_echo, only_echo
from voicecoach.history import History, Hold
from voicecoach.playback import Player
from voicecoach.routine import ENGINE_LINES, Routine, vocabulary
from voicecoach.session import (Action, Command, Cut, Earcon, Ended, Event, Outcome, RoundDone,
                                Say, Session, earcon_key)

CONTROL_MARGIN = 0.1
"""A pause/resume/repeat heard within this long of coach speech is taken as its echo (s)."""
MAP_FRAMES = 1000
"""How many recent frames' session times the listener keeps (10 s: longer than any word)."""
CATCH_UP_FRAMES = 3
"""A loop this many frames behind the wall clock drops sound to catch up (less is jitter)."""

EXIT_CODES = {Outcome.COMPLETED: 0, Outcome.SAFETY: 3, Outcome.MIC_LOST: 3,
              Outcome.STOPPED: 4, Outcome.ERROR: 1}
"""The public contract for shortcut scripts (also 2: bad usage or routine; 5: already running)."""


@dataclass(frozen=True)
class Heard:
    """A word heard, with the session times it started and ended."""

    word: str
    action: str
    start: float
    end: float
    score: float = 0.0
    echo_db: Optional[float] = None     # echo.left_db over the word: None if no echo could be in it


class Ears(Protocol):
    def poll(self, now: float) -> List[Heard]:
        """Words heard up to session time `now`; raises MicrophoneLost."""

    def played(self, start: float, frame: np.ndarray) -> None:
        """The frame the speaker plays from session time `start` (what the canceller removes)."""

    def close(self) -> None: ...


class SpotterEars:
    """A microphone and a keyword spotter; live, spotting runs on its own thread.

    In file mode (`threaded=False`) frames are spotted inline, in lockstep with the speaker,
    so a file-backed session is exactly repeatable.
    """

    def __init__(self, mic: Microphone, spotter, threaded: bool,
                 echo: Optional[EchoCanceller] = None) -> None:
        self._mic = mic
        self._spotter = spotter
        self.echo = echo or EchoCanceller()
        self._fed = 0
        self._times: Deque[float] = deque(maxlen=MAP_FRAMES)   # session time of recent frames
        self._threaded = threaded
        self._out: "queue.Queue[object]" = queue.Queue()
        self._now = 0.0
        self._stop = threading.Event()
        if threaded:
            self._thread = threading.Thread(target=self._loop, name="listener", daemon=True)
            self._thread.start()

    def _spot(self, until: float) -> List[Heard]:
        heard = []
        for t, frame in self._mic.frames(until):
            frame = self.echo.clean(t, frame)
            self._times.append(self.echo.counted)   # the canceller's count: left_db spans are on it
            self._fed += 1
            for d in self._spotter.process(frame):
                start, end = self._session_time(d.start), self._session_time(d.t)
                heard.append(Heard(d.word, d.action, start, end, d.score, self.echo.left_db(start, end)))
        return heard

    def _session_time(self, stream_t: float) -> float:
        """The spotter counts time in frames fed; map it through each frame's own session time,
        since a live microphone's frames need not be contiguous in session time."""
        index = int(stream_t / FRAME_SECONDS)
        back = min(max(self._fed - 1 - index, 0), len(self._times) - 1)
        return self._times[-1 - back] + (stream_t - index * FRAME_SECONDS)

    def _loop(self) -> None:
        while not self._stop.wait(0.01):
            try:
                for h in self._spot(self._now):
                    self._out.put(h)
            except MicrophoneLost as exc:
                self._out.put(exc)
                return

    def poll(self, now: float) -> List[Heard]:
        if not self._threaded:
            return self._spot(now)
        self._now = now
        heard = []
        while True:
            try:
                item = self._out.get_nowait()
            except queue.Empty:
                return heard
            if isinstance(item, MicrophoneLost):
                raise item
            heard.append(item)  # type: ignore[arg-type]

    def played(self, start: float, frame: np.ndarray) -> None:
        self.echo.played(start, frame)

    def close(self) -> None:
        self._stop.set()
        if self._threaded:
            self._thread.join(timeout=2)
        self._mic.close()


class TypedEars:
    """`--text` mode: each line typed on stdin is a heard phrase."""

    def __init__(self, vocabulary: Mapping[str, str], stream: TextIO = sys.stdin) -> None:
        self._vocab = vocabulary
        self._lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), name="stdin", daemon=True).start()

    def _read(self, stream: TextIO) -> None:
        for line in stream:
            self._lines.put(line.strip().lower())

    def poll(self, now: float) -> List[Heard]:
        heard = []
        while not self._lines.empty():
            text = self._lines.get_nowait()
            for phrase, action in self._vocab.items():
                if f" {phrase} " in f" {text} ":
                    heard.append(Heard(phrase, action, now, now))
                    break
        return heard

    def played(self, start: float, frame: np.ndarray) -> None:
        pass   # typed words have no echo

    def close(self) -> None:
        pass


def is_own_voice(phrase: str, spoken: List[str]) -> bool:
    """True when the coach was saying this keyword (or a word built on it) at that moment.

    "numb" is heard inside the coach's "numbness", "pain" inside "painful": a word that begins
    with a keyword's word counts as saying it. Each word of a phrase must be among those spoken.
    """
    return all(any(w.startswith(k) or (len(w) >= 4 and k.startswith(w)) for w in spoken)
               for k in phrase.split())


class Observer(Protocol):
    def command(self, cmd: Command, session: Session) -> None: ...

    def heard(self, heard: Heard, discounted: bool) -> None:
        """A word the spotter heard, and whether it was discounted as the coach's own voice."""


@dataclass
class Result:
    outcome: Outcome
    word: Optional[str] = None
    where: Optional[str] = None
    rounds: int = 0
    unsaved: int = 0
    reason: Optional[str] = None
    underruns: int = 0      # the speaker's output ran dry (a busy machine): sound was late or cut

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]


@dataclass
class Coach:
    """Wires a routine's rendered speech to a speaker, ears, the history and a stop flag."""

    routine: Routine
    clips: Mapping[str, object]          # text -> speech.Clip (samples, words, duration)
    earcons: Mapping[str, np.ndarray]
    speaker: Speaker
    count_text: Callable[[int], str]
    ears: Optional[Ears] = None
    history: Optional[History] = None
    stop_flag: threading.Event = field(default_factory=threading.Event)
    observer: Optional[Observer] = None
    echo_margin: float = 0.6   # word times are estimates (worst ~0.27 s) plus the echo's delay

    def run(self) -> Result:
        durations: Dict[str, float] = {t: c.duration for t, c in self.clips.items()}  # type: ignore[attr-defined]
        durations.update({earcon_key(n): len(s) / RATE for n, s in self.earcons.items()})
        self.session = Session(self.routine, durations, self.count_text, listening=self.ears is not None)
        self.player = Player()
        self._result = Result(Outcome.ERROR)
        self._started = datetime.now()
        self._unsaved_warned = False
        self._session_id = self._saved(self.history.start_session(self.routine.name, self._started)
                                       if self.history else 0)
        try:
            self._apply_all(self.session.start(0.0))
            while not (self.session.done and not self.player.busy):
                self._turn()
            if self._unsaved_warned and self.history is not None and self.history.pending:
                self._say_now(ENGINE_LINES["unsaved"])
        except DeviceError as exc:
            where = self.session.where(self.player.now)
            self._result = Result(Outcome.ERROR, where=where, rounds=self._result.rounds, reason=str(exc))
            if self.history:
                self.history.end_session(self._session_id, "error", self._wall(self.player.now),
                                         None, f"{where}: {exc}")
        if self.history:
            self._result.unsaved = self.history.pending
        return self._result

    def _turn(self) -> None:
        """One frame: what was heard, what is due, then 10 ms of sound (this paces a live session).

        If the loop stalled (a loaded machine), the frames the wall clock has passed are dropped
        rather than played late: the next count still comes on its second.
        """
        self._apply_all(self._listen(self.player.now))
        late = int(self.speaker.behind(self.player.now) / FRAME_SECONDS) - CATCH_UP_FRAMES
        for _ in range(max(late, 0) + 1):
            self._apply_all(self.session.advance(self.player.now + FRAME_SECONDS))
            start, frame = self.player.now, self.player.frame()
        if self.ears is not None:
            self.ears.played(start, frame)
        self.speaker.write(frame)

    def _say_now(self, text: str) -> None:
        """A line outside the routine's timeline, played to its end (the history warning)."""
        clip = self.clips[text]
        self.player.schedule(text, clip.samples, self.player.now, clip.words)  # type: ignore[attr-defined]
        while self.player.busy:
            self.speaker.write(self.player.frame())

    def _saved(self, result):
        """A history write that failed is kept in memory by History; warn the person once."""
        if result is None or result is False:
            if not self._unsaved_warned:
                print("voicecoach: warning: the history could not be saved; rounds are kept in "
                      "memory and written when possible", file=sys.stderr)
            self._unsaved_warned = True
        return result

    def _own_voice(self, heard: Heard) -> bool:
        """Whether a heard word is the coach's own voice rather than the person's.

        Safety words and "stop" are discounted only when all that was heard is the residue of
        its echo (the spotter misheard the coach's other words: "hurts" in "release"), or when
        the coach was saying that word (or one of its family) then and the sound was mostly its
        echo (`mostly_echo`): a person's "pain" over the counting, or over the coach's own
        "pain", must be heard. Pause, resume and repeat only matter when the coach is
        quiet, so any coach speech under them discounts them ("release" was heard as "repeat")."""
        if heard.action in ("pause", "resume", "repeat"):
            if self.player.speaking(heard.start, heard.end, CONTROL_MARGIN):
                return True
        if only_echo(heard.echo_db):
            return True
        if not mostly_echo(heard.echo_db):      # the canceller heard more than its echo there
            return False
        spoken = self.player.speaking(heard.start, heard.end, self.echo_margin)
        return any(is_own_voice(p, spoken) for p in self._same_action(heard))

    def _same_action(self, heard: Heard) -> List[str]:
        """The heard phrase and every other phrase with its action: the spotter confuses words
        within a family ("wait" for the coach's "pause"), so the coach saying any of them counts."""
        return [heard.word] + [k.phrase for k in vocabulary(self.routine) if k.action == heard.action]

    def _apply_all(self, cmds: List[Command]) -> None:
        for cmd in cmds:
            self._apply(cmd)

    def _listen(self, now: float) -> List[Command]:
        events: List[Event] = []
        if self.stop_flag.is_set():
            self.stop_flag.clear()
            events.append(Event(Action.STOP, "stop shortcut"))
        if self.ears is not None and not self.session.done:
            try:
                # what is heard now answers what the person hears now: the speaker's buffer
                # plays `now` later, and the wall clock says which sample is sounding
                for h in self.ears.poll(now + min(self.speaker.behind(now), 0.0)):
                    own = self._own_voice(h)
                    if self.observer:
                        self.observer.heard(h, own)
                    if own:
                        continue
                    events.append(Event(Action(h.action), h.word))
            except MicrophoneLost as exc:
                self._result.reason = str(exc)
                events.append(Event(Action.MIC_LOST, "microphone"))
        out: List[Command] = []
        for e in events:
            out += self.session.handle(e, now)
        return out

    def _apply(self, cmd: Command) -> None:
        """Carry out one command; the observer hears of it after (a logged round is on disk)."""
        if isinstance(cmd, Say):
            clip = self.clips[cmd.text]
            self.player.schedule(cmd.text, clip.samples, cmd.at, clip.words)  # type: ignore[attr-defined]
        elif isinstance(cmd, Earcon):
            self.player.schedule(f"earcon:{cmd.name}", self.earcons[cmd.name], cmd.at)
        elif isinstance(cmd, Cut):
            self.player.cut(cmd.at)
        elif isinstance(cmd, RoundDone):
            holds = [Hold(h.side, self._wall(h.start), h.seconds) for h in cmd.holds]
            if self.history:
                self._saved(self.history.log_round(self._session_id, cmd.round_no, holds, self._wall(cmd.at)))
            self._result.rounds += 1
        elif isinstance(cmd, Ended):
            reason = self._result.reason
            self._result = Result(cmd.outcome, cmd.word, cmd.where, self._result.rounds, reason=reason)
            if self.history:
                self._saved(self.history.end_session(self._session_id, cmd.outcome.value,
                                                     self._wall(cmd.at), cmd.word, cmd.where))
        if self.observer:
            self.observer.command(cmd, self.session)

    def _wall(self, t: float) -> datetime:
        return self._started + timedelta(seconds=t)
