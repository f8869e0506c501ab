"""The coach loop on a real-time clock: a stalled loop catches up instead of counting late."""

from __future__ import annotations

import time

import numpy as np

from voicecoach.coach import Coach
from voicecoach.devices import PacedSilence
from voicecoach.launch import text_clips
from voicecoach.routine import parse_routine
from voicecoach.session import Say
from voicecoach.speech import count_words

ROUTINE = parse_routine("""
name: quick
setup: ["Go."]
sides: [left]
hold_seconds: 4
cues: {position: "Now {side}.", hold: "Hold.", release: "Out.", complete: "Done."}
listen: {safety: [pain], stop: [stop], pause: [], resume: [], repeat: []}
safety: {warning: "Stop."}
""", "quick.yaml")


class StallingObserver:
    """Stalls the loop for half a second when count two is scheduled, as a loaded Pi might."""

    def __init__(self) -> None:
        self.said: list = []
        self.t0 = time.monotonic()

    def command(self, cmd, session) -> None:
        if isinstance(cmd, Say):
            self.said.append((cmd.text, cmd.at, time.monotonic() - self.t0))
            if cmd.text == "two":
                time.sleep(0.5)

    def heard(self, heard, discounted: bool) -> None:
        pass


def test_a_stalled_loop_drops_sound_and_keeps_the_counts_on_the_wall_clock():
    earcons = {n: np.zeros(800, np.int16) for n in ("start", "hold", "done", "alert")}
    observer = StallingObserver()
    coach = Coach(ROUTINE, text_clips(ROUTINE), earcons, PacedSilence(), lambda k: count_words(k)[-1],
                  observer=observer)
    result = coach.run()
    assert result.exit_code == 0 and result.rounds == 1
    counts = {text: (at, wall) for text, at, wall in observer.said if text in ("one", "two", "three", "four")}
    one_at = counts["one"][0]
    assert [counts[w][0] - one_at for w in ("two", "three", "four")] == [1.0, 2.0, 3.0]
    # after the 0.5 s stall, count three is still scheduled when the wall clock says so
    lateness = counts["three"][1] - counts["three"][0]
    assert abs(lateness - (counts["one"][1] - one_at)) < 0.1
