"""A live session's scheduling priority, and what its timeline says it was."""

from __future__ import annotations

import subprocess
import sys


def test_the_priority_reported_is_the_one_granted() -> None:
    """Linux reports SCHED_RR with the reset-on-fork flag set in the policy it returns; read as
    is, a session granted real-time scheduling wrote "normal" on its timeline (every traced
    session of 2026-12-07 17:30). Run in a child: the priority would stay with the test run."""
    done = subprocess.run([sys.executable, "-c", "from voicecoach.priority import audio_priority, "
                           "raise_audio_priority; print(raise_audio_priority(), audio_priority())"],
                          capture_output=True, text=True, check=True, timeout=60)
    granted, reported = done.stdout.split()
    assert reported == granted, done.stdout
