"""The session as a pure state machine on an injected clock.

It never sleeps and never touches audio: it is told the time (`advance(now)`) and what was heard
(`handle(event, now)`), and answers with timed commands (say this at t, cut now, a round is
done). Phrase durations are given up front, so the whole timeline is known in advance and a
whole session runs in a test in microseconds; the runner turns the commands into sound.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional, Sequence, Tuple, Union

from voicecoach.routine import ENGINE_LINES, Routine, announcement, position_cue

CUE_GAP = 0.4
"""Silence after a cue before the next step, so phrases do not run together (s)."""
HOLD_LEAD = 0.6
"""Silence between the end of the "hold" cue and count one (s)."""
PAUSE_LIMIT = 600.0
"""A session paused this long ends as stopped: nobody is there to say resume."""



def earcon_key(name: str) -> str:
    """Key of an earcon's duration in the durations mapping given to Session."""
    return f"earcon:{name}"


class State(enum.Enum):
    SETUP = "setup"
    POSITION = "position"
    HOLD = "hold"
    RELEASE = "release"
    REST = "rest"
    COMPLETE = "complete"
    PAUSED = "paused"
    STOPPING = "stopping"
    DONE = "done"


class Action(enum.Enum):
    """What a heard word, a signal or `voicecoach stop` asks of the session."""

    SAFETY = "safety"
    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"
    REPEAT = "repeat"
    MIC_LOST = "mic-lost"


class Outcome(enum.Enum):
    COMPLETED = "completed"
    SAFETY = "safety"
    STOPPED = "stopped"
    MIC_LOST = "mic-lost"
    ERROR = "error"


@dataclass(frozen=True)
class Event:
    action: Action
    word: Optional[str] = None


@dataclass(frozen=True)
class Say:
    text: str
    at: float


@dataclass(frozen=True)
class Earcon:
    name: str
    at: float


@dataclass(frozen=True)
class Cut:
    at: float


@dataclass(frozen=True)
class HoldDone:
    side: str
    start: float
    seconds: float


@dataclass(frozen=True)
class RoundDone:
    round_no: int
    holds: Tuple[HoldDone, ...]
    at: float


@dataclass(frozen=True)
class Ended:
    outcome: Outcome
    at: float
    word: Optional[str] = None
    where: Optional[str] = None


Command = Union[Say, Earcon, Cut, RoundDone, Ended]


@dataclass(frozen=True)
class Step:
    """One entry of the plan: a state, what is said at its start, and where in the routine."""

    state: State
    text: Optional[str] = None
    round_no: int = 0
    side: Optional[str] = None
    earcon: Optional[str] = None
    rest: float = 0.0


def plan(routine: Routine, listening: bool = True) -> List[Step]:
    """The whole session as a list of steps, in the order they are spoken."""
    steps = [Step(State.SETUP, announcement(routine) if listening else ENGINE_LINES["deaf"],
                  earcon="start")]
    steps += [Step(State.SETUP, cue) for cue in routine.setup]
    for r in range(1, routine.rounds + 1):
        for i, side in enumerate(routine.sides):
            steps.append(Step(State.POSITION, position_cue(routine, side), r, side))
            steps.append(Step(State.HOLD, routine.cues.hold, r, side, earcon="hold"))
            steps.append(Step(State.RELEASE, routine.cues.release, r, side))
            last_side = i == len(routine.sides) - 1
            if not (last_side and r == routine.rounds):
                seconds = routine.rest_between_rounds if last_side else routine.rest_between_sides
                steps.append(Step(State.REST, routine.cues.rest, r, side, rest=seconds))
    steps.append(Step(State.COMPLETE, routine.cues.complete, routine.rounds, earcon="done"))
    return steps


@dataclass
class _Hold:
    start: float
    counted: int = 0


class Session:
    """Runs a plan against the clock; `count_text(k)` is the phrase for count k."""

    def __init__(self, routine: Routine, durations: Mapping[str, float],
                 count_text: Callable[[int], str], listening: bool = True) -> None:
        self.routine = routine
        self._dur = durations
        self._count_text = count_text
        self._steps = plan(routine, listening)
        self._index = -1
        self._step_end = 0.0
        self._hold: Optional[_Hold] = None
        self._holds: List[HoldDone] = []
        self._paused_index: Optional[int] = None
        self.state = State.SETUP
        self.outcome: Optional[Outcome] = None
        self._end_at = 0.0
        self._paused_at = 0.0
        self._stopped_by: Tuple[Optional[str], Optional[str]] = (None, None)

    @property
    def done(self) -> bool:
        return self.state is State.DONE

    @property
    def step(self) -> Optional[Step]:
        return self._steps[self._index] if 0 <= self._index < len(self._steps) else None

    def where(self, now: float) -> str:
        """Where in the routine `now` falls, for the log: round, side and second of a hold."""
        step = self.step
        if step is None or step.state is State.SETUP:
            return "setup"
        text = f"round {step.round_no}"
        if step.side:
            text += f", {step.side}"
        if self._hold is not None and step.state is State.HOLD:
            second = int(now - self._hold.start) + 1 if now >= self._hold.start else 1
            text += f", second {min(second, self.routine.hold_seconds)}"
        elif step.state is not State.HOLD:
            text += f", {step.state.value}"
        return text

    def start(self, now: float) -> List[Command]:
        return self._enter(0, now)

    def advance(self, now: float) -> List[Command]:
        """Everything due up to `now`: counts, next steps, the end."""
        out: List[Command] = []
        if self.state is State.STOPPING:
            if now >= self._end_at:
                self.state = State.DONE
                assert self.outcome is not None
                out.append(Ended(self.outcome, self._end_at, *self._stopped_by))
            return out
        if self.state is State.PAUSED and now - self._paused_at >= PAUSE_LIMIT:
            return self._stop(Event(Action.STOP, "pause timeout"), now)
        if self.state in (State.PAUSED, State.DONE):
            return out
        while True:
            if self._hold is not None:
                out += self._counts(now)
            if now < self._step_end:
                return out
            out += self._finish_step(self._step_end)
            if self.state is State.DONE:
                return out
            out += self._enter(self._index + 1, self._step_end)

    def handle(self, event: Event, now: float) -> List[Command]:
        """A heard word or a signal. Safety and stop cut the voice at once."""
        if self.state in (State.STOPPING, State.DONE):
            return []
        a = event.action
        if a in (Action.SAFETY, Action.MIC_LOST, Action.STOP):
            return self._stop(event, now)
        if a is Action.PAUSE and self.state is not State.PAUSED:
            self._paused_index = self._restart_index()
            self._hold = None
            self.state = State.PAUSED
            self._paused_at = now
            return [Cut(now), Say(ENGINE_LINES["paused"], now)]
        if a is Action.RESUME and self.state is State.PAUSED:
            index, self._paused_index = self._paused_index, None
            gap = self._dur[ENGINE_LINES["resuming"]] + CUE_GAP
            return [Cut(now), Say(ENGINE_LINES["resuming"], now)] + self._enter(index, now + gap)
        if a is Action.REPEAT and self.state is not State.PAUSED:
            return [Cut(now)] + self._enter(self._restart_index(), now)
        return []

    # -- internals -------------------------------------------------------------------------

    def _restart_index(self) -> int:
        """Step to go back to on resume or repeat: a hold restarts from its position cue."""
        step = self.step
        if step is not None and step.state is State.HOLD:
            return self._index - 1
        return max(self._index, 0)

    def _enter(self, index: int, at: float) -> List[Command]:
        self._index = index
        step = self._steps[index]
        self.state = step.state
        self._hold = None
        out: List[Command] = []
        if step.earcon:
            out.append(Earcon(step.earcon, at))
            at += self._dur[earcon_key(step.earcon)]
        spoken = 0.0
        if step.text:
            out.append(Say(step.text, at))
            spoken = self._dur[step.text] + CUE_GAP
        if step.state is State.HOLD:
            self._hold = _Hold(start=at + spoken + HOLD_LEAD - CUE_GAP)
            self._step_end = self._hold.start + self.routine.hold_seconds
        else:
            self._step_end = at + spoken + step.rest
        return out

    def _counts(self, now: float) -> List[Command]:
        """Count k starts at hold start + (k-1) s: scheduled from the clock, never by sleeping."""
        hold = self._hold
        assert hold is not None
        out: List[Command] = []
        while hold.counted < self.routine.hold_seconds and hold.start + hold.counted <= now:
            hold.counted += 1
            out.append(Say(self._count_text(hold.counted), hold.start + hold.counted - 1))
        return out

    def _finish_step(self, at: float) -> List[Command]:
        step = self._steps[self._index]
        out: List[Command] = []
        if step.state is State.HOLD and self._hold is not None:
            self._holds.append(HoldDone(step.side or "", self._hold.start, at - self._hold.start))
            self._hold = None
            if step.side == self.routine.sides[-1]:
                out.append(RoundDone(step.round_no, tuple(self._holds), at))
                self._holds = []
        if self._index == len(self._steps) - 1:
            self.state = State.DONE
            self.outcome = Outcome.COMPLETED
            out.append(Ended(Outcome.COMPLETED, at))
        return out

    def _stop(self, event: Event, now: float) -> List[Command]:
        """Cut; for safety, the stop alert and the warning; the session ends when they are said.

        A plain stop leaves the speaker silent: the person asked for quiet.
        """
        where = self.where(now)
        self._hold = None
        self._holds = []
        out: List[Command] = [Cut(now)]
        lines: Sequence[str]
        if event.action is Action.STOP:
            self.outcome, lines = Outcome.STOPPED, []
        else:
            self.outcome = Outcome.SAFETY if event.action is Action.SAFETY else Outcome.MIC_LOST
            lines = [self.routine.safety.warning]
            if event.action is Action.MIC_LOST:
                lines = [ENGINE_LINES["mic_lost"]] + list(lines)
            if self.routine.safety.contact:
                lines = list(lines) + [self.routine.safety.contact]
            out.append(Earcon("alert", now))
            now += self._dur[earcon_key("alert")]
        for line in lines:
            out.append(Say(line, now))
            now += self._dur[line] + CUE_GAP
        self.state = State.STOPPING
        self._end_at = now
        self._stopped_by = (event.word, where)
        return out

