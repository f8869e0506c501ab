"""Issue 3 benchmark: voicecoach against the obvious approach, measured on real-time devices.

Both play into PulseAudio null sinks whose monitors are recorded on the monotonic clock
(bench/common.py), so every figure is read from the sound that came out:
- count spacing: onsets of a 10-count hold, one second apart (median, worst deviation);
- stop to silence: a stop request at a known instant while a long line plays, to the moment
  the sink goes quiet for good (voicecoach: SIGUSR1, which is what `voicecoach stop` sends,
  timed at os.kill; obvious: engine.stop() while runAndWait() is speaking);
- first sound: from spawning `voicecoach run` (warm speech cache, cold = empty cache) to the
  first sound in the sink; for the obvious approach, from pyttsx3.init() (cold) or from say()
  on a ready engine (warm) to the first sound.
pyttsx3 can hang (runAndWait() never returning, engine.stop() deadlocked in espeak's Cancel),
so the obvious approach runs in child processes, one JSON line per trial: a trial over
HANG_SECONDS is killed with its process group (aplay, parec) and counted as hung, and a new
child goes on. A stop trial whose engine.stop() or runAndWait() is stuck 20 s after the stop
request is hung too, but its stop to silence (read from the sound, as before) is kept.

Usage: bench/timing.py [--quick]  -> table on stdout, bench/out/timing.json
"""

from __future__ import annotations

import argparse
import json
import os
import queue
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

HANG_SECONDS = {"cold": 30.0, "warm": 20.0, "count": 60.0, "stop": 60.0}
"""A trial still running after this long is hung (a spoken word takes about a second)."""


def obvious_plan(quick: bool) -> List[str]:
    """The trials in the order one process runs them: cold start, warm says, a 10-count, stops."""
    return ["cold"] + ["warm"] * (2 if quick else 4) + ["count"] + ["stop"] * (2 if quick else 4)


def obvious_child(first: int, quick: bool) -> None:
    """`--obvious-child FIRST`: pyttsx3 say/runAndWait + sleep(1) in this process, trials FIRST..
    of the plan, aplay playing to PULSE_SINK. A restarted child reports its cold start too."""
    out = os.fdopen(os.dup(1), "w", buffering=1)   # JSON lines only: anything else to stderr
    os.dup2(2, 1)
    plan = obvious_plan(quick)
    rec = Recorder(f"{os.environ['PULSE_SINK']}.monitor")
    t0 = time.monotonic()
    import pyttsx3
    engine = pyttsx3.init()
    engine.say("Ready.")
    engine.runAndWait()
    print(json.dumps({"cold": first_sound(rec, t0, timeout=10)}), file=out)
    time.sleep(1.5)
    for k in range(max(first, 1), len(plan)):
        if plan[k] == "warm":
            t0 = time.monotonic()
            engine.say("Ready.")
            engine.runAndWait()
            result: dict = {"warm": first_sound(rec, t0, timeout=10)}
            time.sleep(1.5)
        elif plan[k] == "count":
            i_counts = len(rec.samples())
            for n in range(1, 11):
                engine.say(str(n))
                engine.runAndWait()
                time.sleep(1)
            heard = onsets(rec.samples()[i_counts:])[:10]          # one word per count
            result = {"intervals": [b - a for a, b in zip(heard, heard[1:])]}
        else:
            result = stop_trial(engine, rec, plan[:k].count("stop"))
        print(json.dumps(result), file=out)
        if result.get("hung"):             # the engine is stuck in its loop: a new child goes on
            break
    rec.stop()
    os._exit(0)                            # not waiting for pyttsx3's threads or its __del__


def stop_trial(engine, rec: Recorder, i: int) -> dict:
    """engine.stop() 1-2 s into a long line said on another thread (as an app would)."""
    i_start = len(rec.samples())
    speaker = threading.Thread(target=lambda: (engine.say(LONG_LINE), engine.runAndWait()), daemon=True)
    t_say = time.monotonic()
    speaker.start()
    started = first_sound(rec, t_say, timeout=5)
    if started is None:                                    # after a stop, the next line can be lost
        speaker.join(timeout=20)
        return {"mute": True, "hung": "runAndWait()" if speaker.is_alive() else None}
    time.sleep(max(0.0, t_say + started + 1.0 + 0.137 * i - time.monotonic()))
    stopper = threading.Thread(target=engine.stop, daemon=True)   # it can deadlock: wait 20 s
    t_stop = time.monotonic()
    stopper.start()
    stopper.join(timeout=20)
    blocked = time.monotonic() - t_stop
    speaker.join(timeout=20)   # the sound stops either way; runAndWait() may never return
    time.sleep(0.5)
    i_stop = max(int((t_stop - rec.t0) * RATE), i_start)
    return {"stop": (silent_from(rec.samples(), i_stop) - i_stop) / RATE,
            "blocked": None if stopper.is_alive() else blocked,
            "hung": "engine.stop()" if stopper.is_alive() else "runAndWait()" if speaker.is_alive() else None}


def read_lines(stream, lines: "queue.Queue[Optional[str]]") -> None:
    """A child's stdout into a queue, then None: so the parent can wait with a timeout."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def bench_obvious(sink: str, server: str, quick: bool) -> dict:
    """The plan's trials through children: each hung (or died) one is killed, noted, skipped."""
    env = dict(os.environ, PULSE_SINK=sink, PULSE_SERVER=server)
    plan, results, failed, k = obvious_plan(quick), [], [], 0
    while k < len(plan):
        proc = subprocess.Popen([PYTHON, __file__, "--obvious-child", str(k)] + ["--quick"] * quick,
                                env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
        lines: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=read_lines, args=(proc.stdout, lines), daemon=True).start()
        warming = k > 0                    # a restarted child's own cold start comes first
        while k < len(plan):
            limit = HANG_SECONDS["cold" if warming else plan[k]]
            try:
                line = lines.get(timeout=limit)
            except queue.Empty:
                os.killpg(proc.pid, signal.SIGKILL)       # aplay and parec with it
                line = f"hung > {limit:.0f} s"
            if line is None:
                line = f"child exited {proc.wait()}"
            if not line.startswith("{"):   # the trial it was on (or warming up for) failed
                failed.append({"trial": k, "kind": plan[k], "why": line})
                k += 1
                break
            results.append(json.loads(line))
            k, warming = k + (not warming), False
            if results[-1].get("hung"):    # measured, then stuck: the child quits, a new one goes on
                failed.append({"trial": k - 1, "kind": plan[k - 1], "why": f"hung in {results[-1]['hung']}"})
                break
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    got = {key: [r[key] for r in results if r.get(key) is not None]
           for key in ("cold", "warm", "stop", "blocked")}
    intervals = [x for r in results for x in r.get("intervals", [])]
    return {"spacing": spacing_stats(intervals) if intervals else {"n": 0},
            "stop_to_silence": summary(got["stop"]), "stop_call_blocked": summary(got["blocked"]),
            "lines_lost_after_stop": sum(1 for r in results if r.get("mute")),
            "first_sound_warm": summary(got["warm"]), "first_sound_cold": summary(got["cold"]),
            "trials": len(plan), "hung": sum(f["why"].startswith("hung") for f in failed), "failed": failed}


def report(coach: dict, obvious: dict) -> str:
    rows = [["measure (ms, from the recorded sink)", "voicecoach", "pyttsx3 + sleep(1)"]]
    for label, key, stat in [("count spacing, median", "spacing", "median_ms"),
                             ("count spacing, worst |dev| from 1 s", "spacing", "worst_dev_ms"),
                             ("stop to silence, median", "stop_to_silence", "median_ms"),
                             ("stop to silence, worst", "stop_to_silence", "worst_ms"),
                             ("first sound, warm, median", "first_sound_warm", "median_ms"),
                             ("first sound, cold, median", "first_sound_cold", "median_ms")]:
        rows.append([label] + [f"{d[key][stat]:.1f}" if stat in d[key] else "-" for d in (coach, obvious)])
    rows.append(["trials hung (killed) or died", "-", f"{len(obvious['failed'])} of {obvious['trials']}"])
    return table(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials (about a minute)")
    parser.add_argument("--obvious-child", type=int, metavar="FIRST", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.obvious_child is not None:
        obvious_child(args.obvious_child, args.quick)
        return 0
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
          f"median; hung: {obvious['hung']} of {obvious['trials']}; {data['seconds']:.0f} s; "
          f"{path.relative_to(REPO)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
