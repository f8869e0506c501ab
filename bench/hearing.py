"""Accuracy benchmark of the hearing vs the obvious SpeechRecognition approach.

Held-out synthetic voices (bench/make_speech.py, split `test`) + the held-out half of real
people from /work/shared/speech (runner.people_split: the other half may be trained on).
Prints one row per engine and writes bench/out/hearing.json.
Usage: .venv/bin/python bench/hearing.py [--quick] [--no-baseline | --learned-only]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from runner import manifest, people, run  # noqa: E402

from voicecoach.audio import RATE, read_wav, write_wav  # noqa: E402
from voicecoach.hearing.sphinx import Tuning  # noqa: E402
from voicecoach.hearing.words import default_keywords, file_frames  # noqa: E402
from voicecoach.hearing.worker import ProcessSpotter  # noqa: E402

OUT = ROOT / "bench" / "out"


@lru_cache(maxsize=None)
def seconds(path: str) -> float:
    """A clip's duration (read once: every engine's run needs it)."""
    return len(read_wav(path)) / RATE


def counting_streams(paths: list[Path], per_stream: int = 100) -> list[Path]:
    """People's digits concatenated with 0.3 s gaps: a person counting along for minutes."""
    streams = []
    for n in range(0, len(paths), per_stream):
        gap = np.zeros(int(0.3 * RATE), np.int16)
        audio = np.concatenate([x for p in paths[n:n + per_stream] for x in (read_wav(p), gap)])
        out = OUT / "counting" / f"stream{n // per_stream:02d}.wav"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_wav(out, audio)
        streams.append(out)
    return streams


def baseline(paths: list[str]) -> list[list[tuple[str, float]]]:
    """SpeechRecognition recognize_sphinx with keyword_entries at 1e-20, one clip at a time."""
    import speech_recognition as sr
    rec = sr.Recognizer()
    entries = [(k.phrase, 1e-20) for k in default_keywords()]
    words = []
    for p in paths:
        with sr.AudioFile(p) as f:
            audio = rec.record(f)
        try:
            text = rec.recognize_sphinx(audio, keyword_entries=entries)
        except sr.UnknownValueError:
            text = ""
        words.append([(w, 0.0) for w in (k.phrase for k in default_keywords()) if w in text])
    return words


def listener_memory(engine: str | None, stream: Path, clips: list[str]) -> float:
    """Peak resident memory (MiB) of the process that hears. voicecoach's engines: its own
    listener process (voicecoach.hearing.worker, as a live session starts it), once a person's counting
    has gone through it frame by frame. The obvious approach: a process running it over clips."""
    if engine is None:
        code = ("import resource, sys; sys.path.insert(0, sys.argv[1]); from hearing import baseline; "
                "baseline(sys.argv[2:]); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        out = subprocess.run([sys.executable, "-c", code, str(ROOT / "bench"), *clips], cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout
        return int(out.split()[-1]) / 1024
    spotter = ProcessSpotter(default_keywords(), engine)
    try:
        spotter.wait_ready()
        for frame in file_frames(stream):
            spotter.process(frame)
        status = Path(f"/proc/{spotter.pid}/status").read_text().splitlines()
        return int(next(line.split()[1] for line in status if line.startswith("VmHWM:"))) / 1024
    finally:
        spotter.close()


def wilson(k: int, n: int, z: float = 1.96) -> list:
    """95 % interval of a share k of n (Wilson): with 10 people or 40 clips of a word the
    figures are rough, and the interval says how rough."""
    p, d = k / n, 1 + z * z / n
    mid, half = (p + z * z / (2 * n)) / d, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [round(max(mid - half, 0.0), 3), round(min(mid + half, 1.0), 3)]


def count_interval(k: int) -> tuple:
    """Exact 95 % interval of the mean of a count k (Garwood), by bisection on the Poisson CDF:
    one false stop in minutes of counting says little about the rate per hour."""
    def cdf(j: int, mu: float) -> float:     # in logs: hundreds of false stops overflowed mu ** i
        if j < 0:
            return 0.0
        if mu <= 0:
            return 1.0
        return sum(math.exp(i * math.log(mu) - mu - math.lgamma(i + 1)) for i in range(j + 1))

    def solve(below) -> float:
        lo, hi = 0.0, 10.0 * k + 10.0
        for _ in range(100):
            lo, hi = ((lo + hi) / 2, hi) if below((lo + hi) / 2) else (lo, (lo + hi) / 2)
        return lo
    return solve(lambda mu: 1 - cdf(k - 1, mu) < 0.025) if k else 0.0, solve(lambda mu: cdf(k, mu) > 0.025)


def summarise(name: str, sets: dict, detections: dict, seconds: float, audio_s: float) -> dict:
    """Recall per word, FA per clip, false stops per hour of counting."""
    action = {k.phrase: k.action for k in default_keywords()}
    row: dict = {"engine": name, "cpu_share": seconds / audio_s}
    hits, totals = Counter(), Counter()
    for clip, found in zip(sets["positive"], detections["positive"]):
        # only inside the clip: every clip ends in 0.6 s of noise, so a detection in the flush
        # silence after it is not the word (the network once fired "tingling" there)
        heard = any(action.get(w) == clip["action"] and t <= clip["seconds"] for w, t in found)
        source = clip.get("voice", "person:").split(":")[0]        # espeak, festival, person
        for key in (clip["word"], f"all {source}"):
            totals[key] += 1
            hits[key] += heard
    row["recall"] = {w: round(hits[w] / totals[w], 3) for w in totals}
    row["intervals"] = {f"recall {w}": wilson(hits[w], totals[w]) for w in totals}
    for kind in ("people_words", "confusable"):
        alarms = sum(map(bool, detections[kind]))
        row[f"fa_per_clip_{kind}"] = round(alarms / len(sets[kind]), 4)
        row["intervals"][f"fa_per_clip_{kind}"] = wilson(alarms, len(sets[kind]))

    def stops_per_hour(key: str, found: list, seconds: float) -> None:
        """row[key]: false stops per hour over `found`, and its interval."""
        stops, hours = sum(sum(action.get(w) in ("safety", "stop") for w, _ in f) for f in found), seconds / 3600
        row[key] = round(stops / hours, 1)
        row["intervals"][key] = [round(x / hours, 1) for x in count_interval(stops)]

    stops_per_hour("false_stops_per_hour_counting", detections["counting"], sets["counting_seconds"])
    # the held-out voices counting ("one two three four five", ...): more voices than the one
    # person, though synthetic; these clips are among the confusables above too
    counting = [(c, f) for c, f in zip(sets["confusable"], detections["confusable"]) if c["kind"] == "counting"]
    stops_per_hour("false_stops_per_hour_synthetic_counting", [f for _, f in counting],
                   sum(c["seconds"] for c, _ in counting))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a fifth of the clips")
    ap.add_argument("--no-baseline", action="store_true", help="skip the slow SpeechRecognition baseline")
    ap.add_argument("--learned-only", action="store_true", help="only the learned engine (while training)")
    args = ap.parse_args()
    step = 5 if args.quick else 1
    test = manifest("test")
    people_stop = [{"path": str(p), "word": "stop", "action": "stop"} for p in people("stop", "test")]
    sets = {
        "positive": [c for c in test if c["kind"] == "positive"][::step] + people_stop,
        "confusable": [c for c in test if c["kind"] != "positive"][::step],
        "people_words": [{"path": str(p)} for p in people("words", "test")][::step],
    }
    for clip in sets["positive"] + sets["confusable"]:
        clip["seconds"] = seconds(clip["path"])
    digits = people("digits", "test")[::step]
    streams = counting_streams(digits)
    sets["counting"] = [{"path": str(p)} for p in streams]
    sets["counting_seconds"] = sum(seconds(str(p)) for p in streams)
    engines = [("learned", "learned"), ("pocketsphinx two-stage", "pocketsphinx")]
    if args.learned_only:
        engines = engines[:1]
    elif not args.no_baseline:
        engines.append(("sr.recognize_sphinx 1e-20", None))
    rows = []
    for name, engine in engines:
        t0, detections, audio_s = resource.getrusage(resource.RUSAGE_CHILDREN), {}, 0.0
        c0 = time.process_time()
        for kind in ("positive", "confusable", "people_words", "counting"):
            paths = [c["path"] for c in sets[kind]]
            if kind == "counting" and engine is None:
                paths = [str(p) for p in digits]      # the baseline is per clip
            audio_s += sum(seconds(p) for p in paths)
            if engine is None:
                detections[kind] = baseline(paths)
            else:
                detections[kind] = [[(d.word, d.t) for d in f] for f in run(paths, Tuning.load(), engine=engine)]
        t1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (t1.ru_utime - t0.ru_utime) + time.process_time() - c0
        rows.append(summarise(name, sets, detections, cpu, audio_s))
        positives = [c["path"] for c in sets["positive"][:20]]
        rows[-1]["memory_mib"] = round(listener_memory(engine, streams[0], positives), 1)
        rows[-1]["people_stop_recall"] = round(rows[-1]["recall"]["all person"], 2)   # people say only "stop"
    (OUT / "hearing.json").write_text(json.dumps({"quick": args.quick, "rows": rows}, indent=1))
    for r in rows:
        print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
