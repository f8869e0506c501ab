"""The session state machine on a virtual clock: every transition, a stop in every state."""

from __future__ import annotations

import time
from typing import List, Tuple

import pytest

from voicecoach.routine import builtin_routine, parse_routine
from voicecoach.session import (ENGINE_LINES, PAUSE_LIMIT, Action, Cut, Earcon, Ended, Event, Outcome, RoundDone,
                                Say, Session, State, earcon_key, plan)

ROUTINE = parse_routine("""
name: test
setup: ["Stand tall.", "Hinge at the hips."]
sides: [left, right]
hold_seconds: 5
rounds: 2
rest_between_sides: 2
rest_between_rounds: 4
safety:
  warning: "Stop now and get help."
  contact: "Call your clinician."
""", "test.yaml")

STEP = 0.01


class FakeDurations(dict):
    """Every phrase lasts 0.05 s per character, capped; the alert earcon 0.15 s."""

    def __missing__(self, key: str) -> float:
        return 0.15 if key == earcon_key("alert") else min(0.05 * len(key), 3.0)


def make(routine=ROUTINE) -> Session:
    return Session(routine, FakeDurations(), lambda k: f"count {k}")


def run_until(session: Session, t: float, until=None, end: float = 600.0) -> Tuple[float, list]:
    """Advance in 10 ms steps until the predicate holds (or the end); return the time and commands."""
    cmds: list = []
    while t < end and not session.done:
        if until is not None and until(session):
            return t, cmds
        t = round(t + STEP, 6)
        cmds += session.advance(t)
    return t, cmds


def test_plan_follows_the_routine():
    states = [s.state for s in plan(ROUTINE)]
    assert states[:3] == [State.SETUP] * 3                      # announcement + 2 setup cues
    assert states.count(State.HOLD) == 4                        # 2 rounds x 2 sides
    assert states.count(State.REST) == 3                        # not after the last hold
    assert states[-1] is State.COMPLETE
    sides = [s.side for s in plan(ROUTINE) if s.state is State.HOLD]
    assert sides == ["left", "right", "left", "right"]


def test_whole_session_counts_on_the_second_and_logs_every_round():
    s = make()
    cmds = s.start(0.0)
    t, more = run_until(s, 0.0)
    cmds += more
    assert s.done and s.outcome is Outcome.COMPLETED
    counts = [c for c in cmds if isinstance(c, Say) and c.text.startswith("count")]
    assert len(counts) == 4 * 5
    rounds = [c for c in cmds if isinstance(c, RoundDone)]
    assert [r.round_no for r in rounds] == [1, 2]
    for r in rounds:
        assert [h.side for h in r.holds] == ["left", "right"]
        for h in r.holds:
            assert h.seconds == pytest.approx(5.0)
            hold_counts = [c for c in counts if h.start - 1e-9 <= c.at < h.start + h.seconds]
            assert [c.text for c in hold_counts] == [f"count {k}" for k in range(1, 6)]
            # count k is scheduled at hold start + (k-1) s exactly, whatever the loop step
            assert [c.at - h.start for c in hold_counts] == pytest.approx([0, 1, 2, 3, 4], abs=1e-9)
    assert isinstance(cmds[-1], Ended) and cmds[-1].outcome is Outcome.COMPLETED
    assert isinstance(cmds[-2], Earcon) or any(isinstance(c, Earcon) and c.name == "done" for c in cmds)


def test_a_whole_session_runs_in_well_under_a_second():
    t0 = time.perf_counter()
    s = make(builtin_routine())
    s.start(0.0)
    run_until(s, 0.0)
    assert s.done and time.perf_counter() - t0 < 1.0


def test_counts_do_not_drift_with_a_coarse_or_irregular_clock():
    s = make()
    cmds = s.start(0.0)
    t = 0.0
    while not s.done:
        t += 0.37                      # a loop that wakes at odd times must still schedule exactly
        cmds += s.advance(t)
    holds = [h for c in cmds if isinstance(c, RoundDone) for h in c.holds]
    counts = [c.at for c in cmds if isinstance(c, Say) and c.text.startswith("count")]
    expected = [h.start + k for h in holds for k in range(5)]
    assert counts == pytest.approx(expected, abs=1e-9)


def _states_reached() -> List[State]:
    s = make()
    s.start(0.0)
    seen = []
    t = 0.0
    while not s.done:
        if s.state not in seen:
            seen.append(s.state)
        t += STEP
        s.advance(t)
    return seen


@pytest.mark.parametrize("state", [State.SETUP, State.POSITION, State.HOLD, State.RELEASE, State.REST,
                                   State.COMPLETE, State.PAUSED])
@pytest.mark.parametrize("action", [Action.STOP, Action.SAFETY, Action.MIC_LOST])
def test_stop_in_every_state(state, action):
    s = make()
    s.start(0.0)
    t, _ = run_until(s, 0.0, lambda x: x.state is (State.HOLD if state is State.PAUSED else state))
    t = round(t + 0.5 if state is State.HOLD else t, 6)
    s.advance(t)
    if state is State.PAUSED:
        s.handle(Event(Action.PAUSE, "pause"), t)
        assert s.state is State.PAUSED
    cmds = s.handle(Event(action, "pain"), t)
    assert isinstance(cmds[0], Cut) and cmds[0].at == t        # the voice is cut at once
    said = [c.text for c in cmds if isinstance(c, Say)]
    if action is Action.STOP:
        assert said == [] and cmds == [Cut(t)]                   # silence: no alert, no warning
    else:
        assert isinstance(cmds[1], Earcon) and cmds[1].name == "alert"
        assert "Stop now and get help." in said and said[-1] == "Call your clinician."
        assert (ENGINE_LINES["mic_lost"] in said) == (action is Action.MIC_LOST)
        first = next(c for c in cmds if isinstance(c, Say))
        assert first.at == pytest.approx(t + 0.15)               # warning right after the alert
    assert s.state is State.STOPPING
    assert s.handle(Event(Action.RESUME), t + 0.1) == []          # nothing restarts a stopped session
    _, rest = run_until(s, t)
    ended = [c for c in rest if isinstance(c, Ended)]
    expected = {Action.STOP: Outcome.STOPPED, Action.SAFETY: Outcome.SAFETY, Action.MIC_LOST: Outcome.MIC_LOST}
    assert len(ended) == 1 and ended[0].outcome is expected[action] and ended[0].word == "pain"
    assert not any(isinstance(c, (Say, RoundDone)) for c in rest)  # nothing said after the end
    if state is State.HOLD:
        assert ended[0].where == "round 1, left, second 1"


def test_every_state_is_reached():
    assert set(_states_reached()) >= {State.SETUP, State.POSITION, State.HOLD, State.RELEASE,
                                      State.REST, State.COMPLETE}


def test_pause_and_resume_restart_the_hold_from_its_position_cue():
    s = make()
    s.start(0.0)
    t, _ = run_until(s, 0.0, lambda x: x.state is State.HOLD)
    t, _ = run_until(s, t, end=t + 2.5)                          # two counts in
    cmds = s.handle(Event(Action.PAUSE, "pause"), t)
    assert isinstance(cmds[0], Cut) and [c.text for c in cmds if isinstance(c, Say)] == [ENGINE_LINES["paused"]]
    assert s.state is State.PAUSED
    _, idle = run_until(s, t, end=t + 30)                        # paused: nothing happens however long
    assert idle == [] and s.state is State.PAUSED
    t += 30
    cmds = s.handle(Event(Action.RESUME, "resume"), t)
    said = [c.text for c in cmds if isinstance(c, Say)]
    assert said[0] == ENGINE_LINES["resuming"] and "left" in said[1]   # the left position cue again
    assert s.state is State.POSITION
    _, cmds = run_until(s, t)
    first_round = next(c for c in cmds if isinstance(c, RoundDone))
    assert first_round.holds[0].seconds == pytest.approx(5.0)     # a full hold, not the interrupted one
    assert s.outcome is Outcome.COMPLETED


def test_a_pause_nobody_resumes_ends_the_session_as_stopped():
    s = make()
    s.start(0.0)
    s.handle(Event(Action.PAUSE, "pause"), 1.0)
    _, cmds = run_until(s, 1.0, end=1.0 + PAUSE_LIMIT + 5)
    ended = [c for c in cmds if isinstance(c, Ended)]
    assert ended and ended[0].outcome is Outcome.STOPPED and ended[0].word == "pause timeout"
    assert ended[0].at == pytest.approx(1.0 + PAUSE_LIMIT, abs=0.02)


def test_resume_without_pause_and_second_pause_do_nothing():
    s = make()
    s.start(0.0)
    assert s.handle(Event(Action.RESUME), 0.1) == []
    s.handle(Event(Action.PAUSE), 0.2)
    assert s.handle(Event(Action.PAUSE), 0.3) == []
    assert s.handle(Event(Action.REPEAT), 0.3) == []


def test_repeat_says_the_current_cue_again():
    s = make()
    s.start(0.0)
    t, _ = run_until(s, 0.0, lambda x: x.state is State.POSITION)
    t += 0.2
    s.advance(t)
    cmds = s.handle(Event(Action.REPEAT, "repeat"), t)
    assert isinstance(cmds[0], Cut)
    assert [c.text for c in cmds if isinstance(c, Say)] == ["Now your left side."]


def test_where_names_round_side_and_second():
    s = make()
    s.start(0.0)
    t, _ = run_until(s, 0.0, lambda x: x.state is State.HOLD)
    assert s.where(t) == "round 1, left, second 1"              # the hold cue, before count one
    _, cmds = run_until(s, t, end=t + 5)
    one = next(c.at for c in cmds if isinstance(c, Say) and c.text == "count 1")
    assert s.where(one + 3.5) == "round 1, left, second 4"


def test_without_listening_the_first_thing_said_is_that_voice_stop_is_off():
    s = Session(ROUTINE, FakeDurations(), str, listening=False)
    first = next(c for c in s.start(0.0) if isinstance(c, Say))
    assert first.text == ENGINE_LINES["deaf"]
    s2 = make()
    first2 = next(c for c in s2.start(0.0) if isinstance(c, Say))
    assert "pain" in first2.text                                  # tells which words stop it
