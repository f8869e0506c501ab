"""PulseAudio virtual devices for checks without sound hardware (the tests' and benchmarks' rigs).

Nothing in a session needs this: it couples a virtual speaker into a virtual microphone, which
is how the tests and bench/ hear the coach's own voice at a known level.
"""

from __future__ import annotations

from typing import Callable

SERVER_ARGS = ("-D", "--exit-idle-time=-1", "--disallow-exit", "--no-cpu-limit", "--realtime=no",
               "--high-priority=no")
"""How the rigs start a server: kept alive, and without the CPU-load limiter and real-time
scheduling, the two ways a busy daemon ends itself (`pulseaudio -k` still stops it)."""


def load_loopback(run_pactl: Callable[..., str], source: str, sink: str, latency_ms: int, db: float) -> str:
    """Couple `source` into `sink` at `db` (a speaker heard by a microphone); the module's index.
    The volume is always set, as a linear factor: PulseAudio's stream-restore gives a new
    loopback the volume the last one had (kept on disk across servers), and pactl takes a signed
    dB value as relative. `run_pactl` runs pactl against the caller's own server."""
    module = run_pactl("load-module", "module-loopback", f"source={source}", f"sink={sink}",
                       f"latency_msec={latency_ms}", "source_dont_move=true", "sink_dont_move=true").strip()
    current = ""
    for line in run_pactl("list", "sink-inputs").splitlines():   # the sink input it plays through
        if line.startswith("Sink Input #"):
            current = line.split("#", 1)[1].strip()
        elif line.strip() == f"Owner Module: {module}":
            run_pactl("set-sink-input-volume", current, f"{10 ** (db / 20):.6f}")
            return module
    raise RuntimeError(f"no sink input belongs to module {module}")
