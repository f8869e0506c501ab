"""Issue 20 benchmark: its own voice, quiet or busy. Live sessions on PulseAudio with the speaker
coupled into the microphone, N busy loops beside them.

Couplings: `direct` (the microphone is the speaker's own null-sink monitor: the coach's voice
at 0 dB, no delay, as a USB speakerphone or a mic on the speaker), `loop0` and `loop10` (the
speaker's monitor played into the microphone's sink by module-loopback, 10 ms latency asked,
at 0 and +10 dB against the person). Each trial is two sessions of a short routine whose set-up
line says the coach's own safety words ("If you feel sharp pain, pins and needles, or numbness
in a leg, stop at once.", after the opening line's "pain" and "stop") and whose hold counts
--hold seconds:
- own voice: nobody speaks; it must complete (exit 0). The speaker's monitor is recorded and
  each count the timeline says was played is looked for there (a sound starting from 0.1 s
  before to 0.3 s after its place): how many of --hold were heard, and their spacing;
- pain: a person's "pain" (espeak-ng, another voice, or --person's WAV made as loud; as loud as the
  coach at 0 dB, 10 dB under it at +10) is played into the microphone 0.3 s after the coach says "three"; it must stop
  for safety on "pain" (exit 3). A session of either kind that ends before the person spoke is
  a self-stop.
With --busy N, N `python3 -c 'while True: pass'` run at normal priority throughout. With
--unprivileged the coach runs without CAP_SYS_NICE (as a user granted no priority). Each
session's record is appended to bench/out/echoload-<condition>.jsonl as it ends (a cut run keeps
what it measured); the summary gives shares with Wilson 95 % intervals and the load average.
With --trace DIR each session also keeps its canceller's input and speaker writes
(bench/echotrace.py) and both monitors, for bench/echoreplay.py.
Usage: .venv/bin/python bench/echoload.py --coupling direct [--busy 2] [--trials 20] [--hold 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (OUT, PYTHON, REPO, Pulse, Recorder, person_says, play, timeline, user_env, voicecoach,  # noqa: E402
                    wait_for_say, workdir, write_routine)

from voicecoach.audio import RATE, onsets, read_wav, speech_power, write_wav  # noqa: E402

SETUP = "If you feel sharp pain, pins and needles, or numbness in a leg, stop at once."
"""The coach's own safety words in its set-up line, after the opening line's "pain" and "stop"."""
COUPLINGS = {"direct": None, "loop0": 0.0, "loop10": 10.0}
"""Coupling name -> loopback level (dB); None: the microphone is the speaker's monitor."""
SPACING_MS = 20.0
"""The goal: every count 1.000 s +- 20 ms after the one before."""


def wilson(k: int, n: int, z: float = 1.96) -> List[float]:
    """Wilson 95 % interval of the share k / n."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    mid, half = (p + z * z / (2 * n)), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [round(max(mid - half, 0.0) / (1 + z * z / n), 3), round(min((mid + half) / (1 + z * z / n), 1.0), 3)]


def counts_heard(samples: Sequence[int], events: List[dict], hold: int) -> Dict[str, object]:
    """The counts in the speaker's recording: each count the timeline says was played ("one",
    "two", ...) is heard if a sound starts within 0.1 s of where it belongs (the recording's
    first onset is the session's start earcon, at 0); spacing is from one heard count's onset to
    the next's."""
    import numpy as np
    from voicecoach.speech import count_words
    times = np.asarray(onsets(np.asarray(samples)))
    if len(times) == 0:
        return {"counts": 0, "intervals": []}
    words = [count_words(k)[-1] for k in range(1, hold + 1)]
    at = {e["text"]: e["at"] for e in events if e["type"] == "say" and e["text"] in words}
    found: List[Optional[float]] = []
    late: List[Optional[float]] = []
    for w in words:   # a count may sound late (an underrun delays what follows): up to 0.3 s
        off = times - (times[0] + at[w]) if w in at else np.zeros(0)
        near = off[(off > -0.1) & (off < 0.3)]
        found.append(float(times[0] + at[w] + near[0]) if len(near) else None)
        late.append(round(float(near[0]), 4) if len(near) else None)
    intervals = [b - a for a, b in zip(found, found[1:]) if a is not None and b is not None]
    return {"counts": sum(f is not None for f in found), "intervals": intervals, "count_offsets": late}


def session(pulse: Pulse, work: Path, routine: Path, pain_wav: Path, coupling: str, person: bool,
            tag: str, hold: int, unprivileged: bool = False, keep: Optional[Path] = None,
            trace: Optional[Path] = None) -> dict:
    spk = pulse.sink("el_spk")
    if COUPLINGS[coupling] is None:
        mic_source, person_sink = f"{spk}.monitor", spk
    else:
        mic = pulse.sink("el_mic")
        pulse.loopback(f"{spk}.monitor", mic, db=COUPLINGS[coupling])
        mic_source, person_sink = f"{mic}.monitor", mic
    env = user_env(work, pulse.server)
    tl = work / f"{tag}.jsonl"
    rec = Recorder(f"{spk}.monitor", env)
    heard_rec = Recorder(mic_source, env) if trace is not None else None
    load = os.getloadavg()[0]
    args = ("run", str(routine), "--mic", mic_source, "--speaker", spk, "--timeline", str(tl))
    if trace is not None:     # the canceller's inputs and the speaker's writes (bench/echotrace.py)
        trace.mkdir(parents=True, exist_ok=True)
        env = dict(env, VOICECOACH_TRACE=str(trace / f"{tag}.npz"))
        proc = subprocess.Popen([PYTHON, str(REPO / "bench" / "echotrace.py"), *args], env=env, cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elif unprivileged:   # as a user the system grants no priority: without CAP_SYS_NICE
        proc = subprocess.Popen(["setpriv", "--bounding-set=-sys_nice", PYTHON, "-m", "voicecoach", *args],
                                env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    else:
        proc = voicecoach(*args, env=env)
    said_three = None
    if person:
        said_three = wait_for_say(tl, "three", proc, timeout=90)
        if said_three is not None:
            time.sleep(0.3)
            play(person_sink, pain_wav, env).wait(timeout=15)
    try:
        out_text, err = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        proc.kill()
        out_text, err = proc.communicate()
    time.sleep(0.3)
    samples = rec.stop()
    if heard_rec is not None and trace is not None:   # both monitors on the same clock as the trace
        heard = heard_rec.stop()
        np.savez_compressed(trace / f"{tag}-monitors.npz", speaker=samples, speaker_t0=rec.t0,
                            mic=heard, mic_t0=heard_rec.t0)
        (trace / f"{tag}.jsonl").write_text(tl.read_text() if tl.exists() else "")
        (trace / f"{tag}.out").write_text(f"{proc.returncode}\n{out_text}\n{err}")
    pulse.close()
    if keep is not None:      # the speaker's recording and the timeline, to look again later
        keep.mkdir(parents=True, exist_ok=True)
        write_wav(keep / f"{tag}.wav", samples)
        if tl.exists():
            (keep / f"{tag}.jsonl").write_text(tl.read_text())
    events = timeline(tl)
    ended = next((e for e in events if e["type"] == "ended"), {})
    out = {"person": person, "exit": proc.returncode, "word": ended.get("word"), "where": ended.get("where"),
           "load": round(load, 2), "load_end": round(os.getloadavg()[0], 2),
           "underruns": ended.get("underruns"), "priority": ended.get("priority"),
           "said": out_text.strip().splitlines()[-1:] if out_text else [],
           "alsa_lines": err.count("ALSA lib"),
           "heard": [{k: e.get(k) for k in ("type", "word", "start", "echo_db")}
                     for e in events if e["type"] in ("heard", "discounted")]}
    if person:
        out["pain_played"] = said_three is not None
    else:
        out.update(counts_heard(samples, events, hold))
    return out


def summarise(rows: List[dict], hold: int) -> Dict[str, object]:
    own = [r for r in rows if not r["person"]]
    pain = [r for r in rows if r["person"]]
    completed = sum(r["exit"] == 0 for r in own)
    early = [r for r in pain if not r.get("pain_played", True)]   # ended before the person spoke
    stopped = sum(r["exit"] == 3 and r["word"] == "pain" and r.get("pain_played", True) for r in pain)
    all_counts = sum(r["exit"] == 0 and r.get("counts") == hold for r in own)
    intervals = [x for r in own if r["exit"] == 0 for x in r.get("intervals", [])]
    on_time = sum(abs(x - 1.0) * 1000 <= SPACING_MS for x in intervals)
    loads = [r["load"] for r in rows]
    return {
        "self_stops": f"{len(own) - completed + len(early)}/{len(rows)}",
        "self_stop_interval": wilson(len(own) - completed + len(early), len(rows)),
        "self_stop_words": [r["word"] for r in own if r["exit"] != 0] + [r["word"] for r in early],
        "own_voice_sessions_completed": f"{completed}/{len(own)}",
        "sessions_with_every_count": f"{all_counts}/{len(own)}",
        "every_count_interval": wilson(all_counts, len(own)),
        "intervals_within_20ms": f"{on_time}/{len(intervals)}",
        "within_20ms_interval": wilson(on_time, len(intervals)),
        "worst_spacing_dev_ms": round(max((abs(x - 1.0) * 1000 for x in intervals), default=float("nan")), 1),
        "pain_stopped": f"{stopped}/{len(pain)}",       # a self-stop before the person spoke fails it too
        "pain_interval": wilson(stopped, len(pain)),
        "pain_failures": [(r["exit"], r["word"]) for r in pain
                          if not (r["exit"] == 3 and r["word"] == "pain" and r.get("pain_played", True))],
        "underruns_per_session": [r["underruns"] for r in rows],
        "alsa_lines_on_stderr": sum(r["alsa_lines"] for r in rows),
        "own_words_discounted": sum(h["type"] == "discounted" for r in own for h in r["heard"]),
        "loudest_own_residue_db": max((h["echo_db"] for r in own for h in r["heard"] if h["echo_db"] is not None),
                                      default=None),
        "load_average": [min(loads), max(loads)] if loads else None,
    }


def as_loud(voice: Path, like: Path, out: Path) -> Path:
    """`voice` scaled to the loudness of `like` (`speech_power`)."""
    said = read_wav(voice).astype(np.float64)
    said *= np.sqrt(speech_power(read_wav(like)) / speech_power(said))
    write_wav(out, np.clip(said, -32768, 32767).astype(np.int16))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coupling", choices=sorted(COUPLINGS), required=True)
    parser.add_argument("--busy", type=int, default=0, help="busy loops at normal priority meanwhile")
    parser.add_argument("--trials", type=int, default=20, help="pairs of sessions (own voice, pain)")
    parser.add_argument("--hold", type=int, default=5, help="seconds counted in the hold")
    parser.add_argument("--unprivileged", action="store_true",
                        help="run the coach without CAP_SYS_NICE (setpriv), as a user granted no priority")
    parser.add_argument("--label", help="a name for what else differs (e.g. the sound server's priority)")
    parser.add_argument("--keep", type=Path, help="keep each session's recording and timeline under this folder")
    parser.add_argument("--trace", type=Path, help="record each session's canceller inputs, speaker writes and "
                        "both monitors under this folder (bench/echotrace.py)")
    parser.add_argument("--person", type=Path, help="the person's \"pain\" from this WAV (16 kHz), made as loud as "
                        "espeak-ng's (default: espeak-ng's own, another voice than the coach's)")
    parser.add_argument("--summary", action="store_true", help="only summarise what the condition's file holds")
    args = parser.parse_args()
    name = (f"echoload-{args.coupling}-busy{args.busy}-hold{args.hold}" + ("-unprivileged" if args.unprivileged else "")
            + (f"-{args.person.stem}" if args.person else "")
            + (f"-{args.label}" if args.label else ""))
    path = OUT / f"{name}.jsonl"
    if not args.summary:
        OUT.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            for _ in range(args.busy):
                stack.callback(subprocess.Popen([sys.executable, "-c", "while True: pass"]).kill)
            work, pulse = stack.enter_context(workdir("vc-echoload-")), stack.enter_context(Pulse())
            traced = args.trace / name / time.strftime("%Y%m%d-%H%M%S") if args.trace else None
            routine = write_routine(work, args.hold, SETUP)
            pain_wav = person_says("pain", work / "pain.wav")
            if args.person:
                pain_wav = as_loud(args.person, pain_wav, work / "person.wav")
            for i in range(args.trials):
                for person in (False, True):
                    row = session(pulse, work, routine, pain_wav, args.coupling, person,
                                  f"{'pain' if person else 'own'}-{i}", args.hold, args.unprivileged,
                                  args.keep / name if args.keep else None,
                                  traced)
                    row.update(trial=i, time=time.strftime("%H:%M:%S"))
                    with open(path, "a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(f"  {name} {i + 1}/{args.trials} {'pain' if person else 'own'}: exit {row['exit']} "
                          f"{row['word'] or ''} counts {row.get('counts', '-')} underruns {row['underruns']} "
                          f"load {row['load']}", file=sys.stderr, flush=True)
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    if args.keep:             # counts found again in the kept recordings (the rule may have changed)
        for r in rows:
            tag = f"{'pain' if r['person'] else 'own'}-{r['trial']}"
            wav, tl = args.keep / name / f"{tag}.wav", args.keep / name / f"{tag}.jsonl"
            if not r["person"] and wav.exists() and tl.exists():
                r.update(counts_heard(read_wav(wav), timeline(tl), args.hold))
    result = summarise(rows, args.hold)
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    for k, v in result.items():
        print(f"{k:28s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
