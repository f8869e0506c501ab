"""Issue 4 benchmark: from the end of a spoken "pain" to the coach's silence and its warning.

A person's "pain" (espeak-ng, another voice than the coach's) is placed mid-hold, at a
different phase of the count in each trial. Keyword end = the last sample of the word's
voiced region as the microphone got it. The cut is found in the coach's output as the start
of the alert earcon, which the session schedules at the very instant of the cut (the count
fades out over 3 ms there); the warning starts where sound resumes after the alert.
Targets: silent <= 150 ms, warning started <= 400 ms.
- file audio: `voicecoach run --mic-file IN --speaker-file OUT`; IN and OUT share the
  session timeline, so times are read directly;
- real time: mic = null sink A's monitor (`paplay -d A pain.wav` while the hold is counted),
  speaker = null sink B; A and B monitors recorded on one clock (bench/common.py).

Usage: bench/latency.py [--quick]  -> table on stdout, bench/out/latency.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (PYTHON, REPO, Pulse, Recorder, find, loud, person_says, play, save,  # noqa: E402
                    summary, table, timeline, user_env, voicecoach, voiced_span, wait_for_say,
                    workdir, write_routine)
from voicecoach.audio import RATE, read_wav, write_wav  # noqa: E402
from voicecoach.speech import earcon  # noqa: E402

SILENT_TARGET, WARNING_TARGET = 0.150, 0.400
PHASES = (0.15, 0.45, 0.75, 0.3, 0.6, 0.9)
"""Where in a count's second the word starts: during the count word and in the gap after it."""


def measure(out: np.ndarray, kw_end: int, alert: np.ndarray) -> Dict[str, Optional[float]]:
    """Silence and warning start after keyword end, all indices on the same clock as `out`."""
    cut = find(alert, out, kw_end - RATE // 2, kw_end + 5 * RATE)   # a cut before the end counts too
    if cut is None:
        return {"silent": None, "warning": None}
    after = cut + len(alert)
    resumed = loud(out[after:after + 2 * RATE])
    return {"silent": (cut - kw_end) / RATE,
            "warning": (after + resumed[0] - kw_end) / RATE if len(resumed) else None}


def file_trials(work: Path, routine: Path, pain: np.ndarray, alert: np.ndarray, n: int) -> List[dict]:
    env = user_env(work)
    ref = work / "ref.jsonl"
    write_wav(work / "silence.wav", np.zeros(RATE, np.int16))
    subprocess.run([PYTHON, "-m", "voicecoach", "run", str(routine), "--mic-file", str(work / "silence.wav"),
                    "--speaker-file", str(work / "ref.wav"), "--timeline", str(ref)],
                   env=env, cwd=REPO, check=True, capture_output=True, timeout=300)
    one = next(e["at"] for e in timeline(ref) if e["type"] == "say" and e["text"] == "one")
    first, last = voiced_span(pain)
    trials = []
    for i in range(n):
        start = int((one + 2 + PHASES[i % len(PHASES)]) * RATE)     # during the third count's second
        mic = np.zeros(start + len(pain) + RATE, np.int16)
        mic[start:start + len(pain)] = pain
        write_wav(work / "in.wav", mic)
        t = time.monotonic()
        r = subprocess.run([PYTHON, "-m", "voicecoach", "run", str(routine), "--mic-file", str(work / "in.wav"),
                            "--speaker-file", str(work / "out.wav")], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=600)
        result = measure(read_wav(work / "out.wav"), start + last, alert)
        trials.append({"exit": r.returncode, "word_at": (start + first) / RATE, "run_seconds": time.monotonic() - t,
                       **result})
        print(f"  file trial {i + 1}/{n}: exit {r.returncode} {_fmt(result)}", file=sys.stderr, flush=True)
    return trials


def live_trials(work: Path, routine: Path, pain_wav: Path, alert: np.ndarray, n: int) -> List[dict]:
    trials = []
    with Pulse() as pulse:
        mic, spk = pulse.sink("bench_mic"), pulse.sink("bench_spk")
        env = user_env(work, pulse.server)
        for i in range(n):
            rec_mic, rec_spk = Recorder(f"{mic}.monitor", env), Recorder(f"{spk}.monitor", env)
            tl = work / f"live-{i}.jsonl"
            proc = voicecoach("run", str(routine), "--mic", f"{mic}.monitor", "--speaker", spk,
                              "--timeline", str(tl), env=env)
            said = wait_for_say(tl, "three", proc)
            if said is None:
                proc.kill()
                raise RuntimeError(f"live session ended before the hold: {proc.communicate()}")
            time.sleep(PHASES[i % len(PHASES)])
            play(mic, pain_wav, env).wait(timeout=10)
            proc.wait(timeout=120)
            time.sleep(0.5)
            heard, out = rec_mic.stop(), rec_spk.stop()
            first, last = voiced_span(heard)
            kw_end_time = rec_mic.t0 + last / RATE
            kw_end = int(round((kw_end_time - rec_spk.t0) * RATE))   # on the speaker recording
            result = measure(out, kw_end, alert)
            trials.append({"exit": proc.returncode, "word_at": rec_mic.t0 + first / RATE, **result})
            print(f"  live trial {i + 1}/{n}: exit {proc.returncode} {_fmt(result)}", file=sys.stderr, flush=True)
    return trials


def _fmt(result: dict) -> str:
    return " ".join(f"{k} {v * 1000:.0f} ms" if v is not None else f"{k} -" for k, v in result.items())


def digest(trials: List[dict]) -> dict:
    stopped = [t for t in trials if t["exit"] == 3 and t["silent"] is not None]
    silent = [t["silent"] for t in stopped]
    warning = [t["warning"] for t in stopped if t["warning"] is not None]
    return {"trials": len(trials), "stopped": len(stopped), "silent": summary(silent),
            "warning": summary(warning),
            "silent_within_target": sum(s <= SILENT_TARGET for s in silent),
            "warning_within_target": sum(w <= WARNING_TARGET for w in warning)}


def report(results: Dict[str, dict]) -> str:
    rows = [["audio", "stopped", "silent median", "silent worst", "<=150 ms", "warning median",
             "warning worst", "<=400 ms"]]
    for name, d in results.items():
        s, w = d["silent"], d["warning"]
        rows.append([name, f"{d['stopped']}/{d['trials']}",
                     f"{s['median_ms']:.0f} ms" if s["n"] else "-", f"{s['worst_ms']:.0f} ms" if s["n"] else "-",
                     f"{d['silent_within_target']}/{s['n']}",
                     f"{w['median_ms']:.0f} ms" if w["n"] else "-", f"{w['worst_ms']:.0f} ms" if w["n"] else "-",
                     f"{d['warning_within_target']}/{w['n']}"])
    return table(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 trials per mode instead of 6")
    parser.add_argument("--only", choices=("file", "live"), help="run one mode")
    args = parser.parse_args()
    n = 2 if args.quick else 6
    started = time.monotonic()
    alert = earcon("alert")
    results: Dict[str, dict] = {}
    raw: Dict[str, List[dict]] = {}
    with workdir("vc-latency-") as work:
        routine = write_routine(work, hold=5)
        pain_wav = person_says("pain", work / "pain.wav")
        if args.only != "live":
            raw["file"] = file_trials(work, routine, read_wav(pain_wav), alert, n)
            results["file"] = digest(raw["file"])
        if args.only != "file":
            raw["real time (PulseAudio)"] = live_trials(work, routine, pain_wav, alert, n)
            results["real time (PulseAudio)"] = digest(raw["real time (PulseAudio)"])
    path = save("latency", {"quick": args.quick, "results": results, "trials": raw,
                            "seconds": time.monotonic() - started})
    print(report(results))
    print(f"\n({time.monotonic() - started:.0f} s; {path.relative_to(REPO)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
