"""Issue 4 benchmark: never hearing itself, live, and still hearing the person over it.

Real-time sessions on PulseAudio null sinks whose speaker is coupled into the microphone at
0 dB (`module-loopback`). With nobody speaking, the built-in routine must complete (exit 0)
although its own lines say "pain", "numbness", "pins and needles", "stop". With a person's
"pain" (espeak-ng, another voice) played into the microphone 0.3 s after the coach counts "two"
(a one-round routine), it must stop for safety (exit 3). Reports how many sessions did, and
what the coach discounted as its own voice: by the word it was saying, or by the echo
canceller's residue alone (`echo_db` under echo.ONLY_ECHO_DB).
With --echo-db the speaker is that much louder (or softer) in the microphone than the person;
with --busy N, N processes spin on the CPU meanwhile (a loaded machine: the audio path's delay
then jumps and drifts).
Usage: .venv/bin/python bench/selftrigger.py [--trials N] [--echo-db DB] [--busy N]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (REPO, Pulse, person_says, play, save, table, timeline, user_env, voicecoach,  # noqa: E402
                    wait_for_say, workdir, write_routine)

from voicecoach.hearing.echo import only_echo  # noqa: E402


def trial(pulse: Pulse, work: Path, routine: Path, pain_wav: Path, i: int, person: bool, echo_db: float) -> dict:
    mic, spk = pulse.sink("st_mic"), pulse.sink("st_spk")
    pulse.loopback(f"{spk}.monitor", mic, db=echo_db)
    env = user_env(work, pulse.server)
    tl = work / f"{'pain' if person else 'own'}-{i}.jsonl"
    which = [str(routine)] if person else []               # the built-in routine, whole
    proc = voicecoach("run", *which, "--mic", f"{mic}.monitor", "--speaker", spk,
                      "--timeline", str(tl), env=env)
    if person:
        if wait_for_say(tl, "two", proc) is None:
            proc.kill()
        else:
            time.sleep(0.3)
            play(mic, pain_wav, env).wait(timeout=10)
    proc.communicate(timeout=180)
    events = timeline(tl)
    ended = next((e for e in events if e["type"] == "ended"), {})
    return {"person": person, "exit": proc.returncode, "ended": ended,
            "discounted": [e for e in events if e["type"] == "discounted"]}


def digest(trials: List[dict]) -> Dict[str, object]:
    own = [t for t in trials if not t["person"]]
    pain = [t for t in trials if t["person"]]
    discounted = [d for t in trials for d in t["discounted"]]
    by_echo = [d for d in discounted if only_echo(d.get("echo_db"))]
    levels = [d["echo_db"] for d in discounted if d.get("echo_db") is not None]
    return {"own_voice_completed": f"{sum(t['exit'] == 0 for t in own)}/{len(own)}",
            "own_voice_failures": [t["ended"] for t in own if t["exit"] != 0],
            "pain_stopped": f"{sum(t['exit'] == 3 and t['ended'].get('word') == 'pain' for t in pain)}/{len(pain)}",
            "pain_failures": [t["ended"] for t in pain if t["exit"] != 3],
            "discounted": len(discounted), "discounted_with_residue_under_threshold": len(by_echo),
            "residue_db_median": statistics.median(levels) if levels else None,
            "residue_db_loudest": max(levels) if levels else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6, help="sessions of each kind (~110 s a pair)")
    parser.add_argument("--echo-db", type=float, default=0.0,
                        help="the speaker's level in the microphone against the person's (a speaker nearer the mic)")
    parser.add_argument("--busy", type=int, default=0, help="processes spinning on the CPU meanwhile")
    args = parser.parse_args()
    started = time.monotonic()
    trials = []
    with contextlib.ExitStack() as stack:
        for _ in range(args.busy):
            stack.callback(subprocess.Popen([sys.executable, "-c", "while True: pass"]).kill)
        work, pulse = stack.enter_context(workdir("vc-selftrigger-")), stack.enter_context(Pulse())
        routine = write_routine(work, hold=5)
        pain_wav = person_says("pain", work / "pain.wav")
        for i in range(args.trials):
            for person in (False, True):
                trials.append(trial(pulse, work, routine, pain_wav, i, person, args.echo_db))
                t = trials[-1]
                print(f"  {'pain' if person else 'own voice'} {i + 1}/{args.trials}: exit {t['exit']} "
                      f"{t['ended'].get('outcome')} {t['ended'].get('word') or ''}", file=sys.stderr, flush=True)
                pulse.close()
    result = digest(trials)
    name = "selftrigger" + (f"{args.echo_db:+g}dB" if args.echo_db else "") + (f"-busy{args.busy}" if args.busy else "")
    path = save(name, {"echo_db": args.echo_db, "busy": args.busy, "results": result, "trials": trials, "seconds": time.monotonic() - started})
    print(table([["measure", "value"]] + [[k, str(v)] for k, v in result.items()]))
    print(f"\n({time.monotonic() - started:.0f} s; {path.relative_to(REPO)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
