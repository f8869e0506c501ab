"""Issue 3 benchmark: voicecoach against the obvious approach, measured on real-time devices.

Both play into PulseAudio null sinks whose monitors are recorded in this process on the
monotonic clock (bench/common.py), so every figure is read from the sound that came out:
- count spacing: onsets of a 10-count hold, one second apart (median, worst deviation);
- stop to silence: a stop request at a known instant while a long line plays, to the moment
  the sink goes quiet for good (voicecoach: SIGUSR1, which is what `voicecoach stop` sends,
  timed at os.kill; obvious: engine.stop() while runAndWait() is speaking);
- first sound: from spawning `voicecoach run` (warm speech cache, cold = empty cache) to the
  first sound in the sink; for the obvious approach, from pyttsx3.init() (cold) or from say()
  on a ready engine (warm) to the first sound. The obvious approach runs in this process.

Usage: bench/timing.py [--quick]  -> table on stdout, bench/out/timing.json
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (PYTHON, REPO, Pulse, Recorder, count_runs, loud, save, silent_from,  # noqa: E402
                    spacing_stats, summary, table, user_env, voicecoach, workdir, write_routine)
from voicecoach.audio import RATE, onsets  # noqa: E402

LONG_LINE = ("Stand tall, facing a low step, and hold on to something steady if you need to, "
             "because this line is long enough to be stopped in the middle.")


def first_sound(rec: Recorder, since: float, timeout: float = 60) -> Optional[float]:
    """Seconds from `since` (monotonic) to the first sound in the recording, waiting for it."""
    start = max(0, int((since - rec.t0) * RATE))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        idx = loud(rec.samples()[start:])
        if len(idx):
            return rec.t0 + (start + idx[0]) / RATE - since
        time.sleep(0.01)
    return None


# -- voicecoach ------------------------------------------------------------------------------


def coach_session(sink: str, routine: Path, env: Dict[str, str], stop_after: Optional[float] = None) -> dict:
    """One `voicecoach run --no-listen` into the sink; optionally SIGUSR1 `stop_after` s after
    its first sound. Returns what the recording shows."""
    rec = Recorder(f"{sink}.monitor", env)
    t_spawn = time.monotonic()
    proc = voicecoach("run", str(routine), "--no-listen", "--speaker", sink, env=env)
    first = first_sound(rec, t_spawn)
    out: dict = {"first_sound": first}
    if stop_after is not None and first is not None:
        time.sleep(max(0.0, t_spawn + first + stop_after - time.monotonic()))
        t_stop = time.monotonic()
        proc.send_signal(signal.SIGUSR1)
        proc.wait(timeout=30)
        time.sleep(0.5)
        samples = rec.stop()
        i_stop = int((t_stop - rec.t0) * RATE)
        out["stop_to_silence"] = (silent_from(samples, i_stop) - i_stop) / RATE
        out["exit"] = proc.returncode
        return out
    proc.wait(timeout=120)
    time.sleep(0.3)
    samples = rec.stop()
    out["exit"] = proc.returncode
    runs = count_runs(onsets(samples), least=5)
    out["intervals"] = [b - a for run in runs for a, b in zip(run, run[1:])]
    return out


def bench_coach(sink: str, work: Path, server: str, quick: bool) -> dict:
    routine = write_routine(work, hold=10)
    env = user_env(work, server)
    subprocess.run([PYTHON, "-m", "voicecoach", "render", str(routine)], env=env, cwd=REPO,
                   check=True, capture_output=True)
    warm: List[float] = []
    intervals: List[float] = []
    for _ in range(1 if quick else 2):
        s = coach_session(sink, routine, env)
        assert s["exit"] == 0, s
        warm.append(s["first_sound"])
        intervals += s["intervals"]
    stops: List[float] = []
    for i in range(3 if quick else 8):
        # the line after the start earcon is 5 s long: stop it 1-2 s in, at varied phases
        s = coach_session(sink, routine, env, stop_after=1.0 + 0.137 * i)
        assert s["exit"] == 4, s
        warm.append(s["first_sound"])
        stops.append(s["stop_to_silence"])
    cold: List[float] = []
    for i in range(1 if quick else 3):
        cache = work / f"cold-cache-{i}"
        s = coach_session(sink, routine, user_env(work, server, cache=cache), stop_after=0.2)
        cold.append(s["first_sound"])
    return {"spacing": spacing_stats(intervals), "stop_to_silence": summary(stops),
            "first_sound_warm": summary(warm), "first_sound_cold": summary(cold)}


# -- the obvious approach ------------------------------------------------------------------


def bench_obvious(sink: str, server: str, quick: bool) -> dict:
    """pyttsx3 say/runAndWait + sleep(1), in this process; aplay goes to the sink via PULSE_SINK."""
    os.environ["PULSE_SINK"] = sink
    os.environ["PULSE_SERVER"] = server
    rec = Recorder(f"{sink}.monitor")
    t0 = time.monotonic()
    import pyttsx3
    engine = pyttsx3.init()
    engine.say("Ready.")
    engine.runAndWait()
    cold = first_sound(rec, t0)
    time.sleep(1.5)
    warm = []
    for _ in range(2 if quick else 4):
        t0 = time.monotonic()
        engine.say("Ready.")
        engine.runAndWait()
        warm.append(first_sound(rec, t0))
        time.sleep(1.5)
    i_counts = len(rec.samples())
    for k in range(1, 11):
        engine.say(str(k))
        engine.runAndWait()
        time.sleep(1)
    samples = rec.samples()
    heard = onsets(samples[i_counts:])[:10]                   # one word per count
    intervals = [b - a for a, b in zip(heard, heard[1:])]

    stops, blocked, mute = [], [], 0
    for i in range(2 if quick else 4):
        i_start = len(rec.samples())
        speaker = threading.Thread(target=lambda: (engine.say(LONG_LINE), engine.runAndWait()), daemon=True)
        t_say = time.monotonic()
        speaker.start()
        started = first_sound(rec, t_say, timeout=5)
        if started is None:                                # after a stop, the next line can be lost
            mute += 1
            speaker.join(timeout=30)
            continue
        time.sleep(max(0.0, t_say + started + 1.0 + 0.137 * i - time.monotonic()))
        t_stop = time.monotonic()
        engine.stop()
        blocked.append(time.monotonic() - t_stop)
        speaker.join(timeout=30)
        time.sleep(0.5)
        samples = rec.samples()
        i_stop = max(int((t_stop - rec.t0) * RATE), i_start)
        stops.append((silent_from(samples, i_stop) - i_stop) / RATE)
    rec.stop()
    return {"spacing": spacing_stats(intervals) if intervals else {"n": 0},
            "stop_to_silence": summary(stops), "stop_call_blocked": summary(blocked),
            "lines_lost_after_stop": mute,
            "first_sound_warm": summary([w for w in warm if w is not None]),
            "first_sound_cold": summary([cold] if cold is not None else [])}


def report(coach: dict, obvious: dict) -> str:
    def ms(d: dict, key: str) -> str:
        return f"{d[key]:.1f}" if key in d else "-"

    rows = [["measure (ms, from the recorded sink)", "voicecoach", "pyttsx3 + sleep(1)"],
            ["count spacing, median", ms(coach["spacing"], "median_ms"), ms(obvious["spacing"], "median_ms")],
            ["count spacing, worst |dev| from 1 s", ms(coach["spacing"], "worst_dev_ms"),
             ms(obvious["spacing"], "worst_dev_ms")],
            ["stop to silence, median", ms(coach["stop_to_silence"], "median_ms"),
             ms(obvious["stop_to_silence"], "median_ms")],
            ["stop to silence, worst", ms(coach["stop_to_silence"], "worst_ms"),
             ms(obvious["stop_to_silence"], "worst_ms")],
            ["first sound, warm, median", ms(coach["first_sound_warm"], "median_ms"),
             ms(obvious["first_sound_warm"], "median_ms")],
            ["first sound, cold, median", ms(coach["first_sound_cold"], "median_ms"),
             ms(obvious["first_sound_cold"], "median_ms")]]
    return table(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials (about a minute)")
    args = parser.parse_args()
    started = time.monotonic()
    with Pulse() as pulse, workdir("vc-timing-") as work:
        coach = bench_coach(pulse.sink("bench_coach"), work, pulse.server, args.quick)
        obvious = bench_obvious(pulse.sink("bench_obvious"), pulse.server, args.quick)
    data = {"quick": args.quick, "voicecoach": coach, "obvious": obvious,
            "seconds": time.monotonic() - started}
    path = save("timing", data)
    print(report(coach, obvious))
    print(f"\n(n: spacing {coach['spacing']['n']}/{obvious['spacing'].get('n', 0)} intervals, "
          f"stops {coach['stop_to_silence']['n']}/{obvious['stop_to_silence']['n']}; "
          f"engine.stop() blocked for {obvious['stop_call_blocked'].get('median_ms', float('nan')):.0f} ms "
          f"median; {data['seconds']:.0f} s; {path.relative_to(REPO)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
