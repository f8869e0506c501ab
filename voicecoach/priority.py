"""Scheduling priority for the coach's audio process, where the system grants it.

On a busy machine the coach's 10 ms speaker loop and its listener share one Python interpreter:
a listener thread preempted by other work while it holds the interpreter's lock stalls the
speaker for 0.1-0.3 s, the output underruns and a count's sound is dropped to keep time. Two
busy loops beside a live session (load 9-10 on 2 cores) gave 22-29 underruns in 30-45 s at
normal priority, 2 at nice -10 and none with round-robin real-time scheduling
(docs/echo-under-load.md). So a live session asks for real-time scheduling first, then a
higher nice; a system that grants neither runs the session as before. Child processes (the
keyword spotter) start at normal priority: their work may wait, the speaker may not.
"""

from __future__ import annotations

import os

RT_PRIORITY = 10
"""A low real-time priority: above every normal process, below the sound server's own threads
(PulseAudio and PipeWire ask for 5-20 through rtkit; JACK uses 70 and more)."""
NICE = -10
"""The fallback: ahead of ordinary work (nice 0), as far as RLIMIT_NICE lets an ordinary user."""


def raise_audio_priority() -> str:
    """Raise this thread's scheduling priority; threads it starts after inherit it, child
    processes do not. Call it before the audio streams and their threads are opened. Returns what
    was granted: "realtime", "nice" or "normal"."""
    try:
        policy = os.SCHED_RR | getattr(os, "SCHED_RESET_ON_FORK", 0)
        os.sched_setscheduler(0, policy, os.sched_param(RT_PRIORITY))
        return "realtime"
    except (AttributeError, OSError):
        pass
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > NICE:
            os.setpriority(os.PRIO_PROCESS, 0, NICE)   # Linux: this thread (and those it starts)
        return "nice"
    except (AttributeError, OSError):
        return "normal"


def audio_priority() -> str:
    """What this thread runs at: "realtime", "nice" (raised) or "normal"."""
    try:
        policy = os.sched_getscheduler(0) & ~getattr(os, "SCHED_RESET_ON_FORK", 0)   # Linux ORs the flag in
        if policy in (os.SCHED_RR, os.SCHED_FIFO):
            return "realtime"
        return "nice" if os.getpriority(os.PRIO_PROCESS, 0) < 0 else "normal"
    except (AttributeError, OSError):
        return "normal"
