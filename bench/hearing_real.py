"""The hearing measured on voices and people it never heard: held-out Kokoro voices (with room
reverb and real background noise), held-out real speakers (Speech Commands, WUW telephone
callers, LJ Speech, a person counting), split by speaker as bench/make_training_data.py made them.

Every clip is streamed once through the learned spotter's front end, recording at each 30 ms
evaluation the log-mel nets' and the embedding head's smoothed label probabilities separately,
and every speech embedding (cached in DATA/traces/). Decisions are then made offline exactly
as `LearnedSpotter` makes them (an action's words scored together, one threshold, 1 s
refractory), so a blend, thresholds or a new head (`--model`) are measured without streaming
again. Figures come with 95 % intervals (Wilson for shares, exact Poisson for counts).
Usage: .venv/bin/python bench/hearing_real.py [--data DIR] [--split test] [--model NPZ] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from collections import Counter, defaultdict
from multiprocessing import get_context
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from hearing import count_interval, wilson  # noqa: E402
from make_speech import background, room  # noqa: E402
import over_coach  # noqa: E402

from voicecoach.audio import FRAME, RATE, read_wav  # noqa: E402
from voicecoach.hearing.embedding import STEPS  # noqa: E402
from voicecoach.hearing.learned import HEAD_SMOOTH, REFRACTORY, SMOOTH, LearnedSpotter, Model, window_vector  # noqa: E402
from voicecoach.hearing.words import FLUSH_SECONDS, default_keywords  # noqa: E402

DATA = Path("/var/cache/voicecoach-dev/hearing/data")
SYNTHETIC = ROOT / "bench" / "out" / "speech"
"""bench/make_speech.py's espeak-ng / flite / festival clips (their own tune and test voices,
already in a room): a retrained head must not lose the unusual voices the old one heard."""
ACTION = {k.phrase: k.action for k in default_keywords()}
STOPS = ("safety", "stop")
"""Actions that end a session: a false one of these is a false stop."""
OVER_COACH_DB = (0.0, 10.0)
"""The `kokoro_over_coach` set: the held-out voices' keywords with the coach talking across them,
the person 0-10 dB above its voice (the canceller's residue at +10 dB coupling, and less)."""


# -- the clips measured --------------------------------------------------------------------------

def manifest(data: Path) -> list:
    items = []
    for name in ("real.jsonl", "kokoro.jsonl"):
        if (data / name).exists():
            items += [json.loads(line) for line in (data / name).read_text().splitlines()]
    return items


def noise_bank(items: list, split: str, data: Path) -> list:
    """The split's background-noise clips (Speech Commands `_silence_`), as float arrays."""
    return [read_wav(data / x["path"]).astype(np.float64) for x in items
            if x["kind"] == "noise" and x["split"] == split]


def degrade(x: np.ndarray, key: str, noises: list) -> tuple:
    """A clean clip in a room: gain, reverb (70 %), a real background noise at 5-30 dB SNR and
    0.8-1.4 s of that room before it, 0.5 s after; seeded by the clip's id. (audio, lead s)."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    y = x.astype(np.float64) * 10 ** (rng.uniform(-15, 0) / 20)
    if rng.random() < 0.7:
        y = room(y, rng, (0.15, 0.6), (0.15, 0.5))
    lead = int(rng.uniform(0.8, 1.4) * RATE)
    level = np.mean(y ** 2)
    y = np.concatenate([np.zeros(lead), y, np.zeros(int(0.5 * RATE))])
    noise = background(len(y), rng, noises, level, (30.0, 20.0, 15.0, 10.0, 5.0))
    return np.clip(y + noise, -32768, 32767).astype(np.int16), lead / RATE


def counting_streams(items: list, split: str, data: Path, per_stream: int = 100) -> list:
    """A person's spoken digits run together with 0.3 s gaps (counting along with the coach)."""
    paths = sorted(x["path"] for x in items if x["source"] == "digits" and x["split"] == split)
    gap = np.zeros(int(0.3 * RATE), np.int16)
    return [np.concatenate([a for p in paths[n:n + per_stream] for a in (read_wav(data / p), gap)])
            for n in range(0, len(paths), per_stream)]


def synthetic(split: str) -> list:
    """SYNTHETIC's clips of one split saying a listened-for word, if bench/make_speech.py made them."""
    made = SYNTHETIC / "manifest.json"
    if not made.exists():
        return []
    return [{**x, "id": f"synthetic/{x['path']}", "path": str(SYNTHETIC / x["path"])}
            for x in json.loads(made.read_text()) if x["split"] == split and x["kind"] == "positive"]


def sets(items: list, split: str, data: Path) -> dict:
    """name -> list of (id, audio builder args, info) for every measured set of one split."""
    out: dict = defaultdict(list)
    made = synthetic(split)
    if made:
        out["synthetic_keyword"] = made
    for x in items:
        if x["split"] != split:
            continue
        if x["source"] == "kokoro":
            kind = {"keyword": "kokoro_keyword", "confusable": "kokoro_confusable", "counting": "kokoro_counting",
                    "sentence": "kokoro_sentence"}.get(x["kind"])
            if kind:
                out[kind].append(x)
            if kind == "kokoro_keyword":
                out["kokoro_over_coach"].append(x)
        elif x["source"] in ("commands", "commands-v2") and x["kind"] == "word":
            out["people_stop" if x["word"] == "stop" else "people_words"].append(x)
        elif x["source"] in ("wuw", "ljspeech"):
            out[f"{x['source']}_{'keyword' if x['keywords'] else 'running'}"].append(x)
    return dict(out)


# -- tracing -----------------------------------------------------------------------------------

_spotter: Optional[LearnedSpotter] = None


def _init(model: Optional[str] = None) -> None:
    global _spotter
    _spotter = LearnedSpotter(default_keywords(), Model.load(model))


def nets_key(model: Model) -> str:
    """A short name of the log-mel nets (the traces hold their probabilities)."""
    crc = 0
    for net in model.nets:
        for w, b, _ in net.convs:
            crc = zlib.crc32(w.tobytes(), crc)
    return f"{crc:08x}"


def trace(audio: np.ndarray) -> dict:
    """The shipped spotter's front end over one clip heard from `reset()` (as `spot_file`: the
    clip, then FLUSH_SECONDS of silence): per evaluation its time, the nets' smoothed
    probabilities and how many embeddings had come; every new embedding."""
    s = _spotter
    assert s is not None and s._embedder is not None
    s.reset()
    audio = np.concatenate([audio, np.zeros(int(FLUSH_SECONDS * RATE), np.int16)])
    ts, nets, counts, embs = [], [], [], []
    recent: list = []
    for i in range(0, len(audio) - FRAME + 1, FRAME):
        embedded, due = s.hear(audio[i:i + FRAME])
        if embedded is not None:
            embs.append(embedded[-1])
        if due:
            probs = s.model.probabilities(window_vector(s.window())[None, :])[0]
            recent = (recent + [probs])[-SMOOTH:]
            ts.append(s._frames * FRAME / RATE)
            nets.append(np.mean(recent, axis=0))
            counts.append(len(embs))
    return {"t": np.array(ts, np.float32), "nets": np.array(nets, np.float32), "k": np.array(counts, np.int32),
            "emb": np.array(embs, np.float16).reshape(-1, 96)}


_coach: list = []


def _trace_one(args: tuple) -> dict:
    path, key, degrade_it, noises_split, data, over = args
    audio = read_wav(Path(data) / path)
    lead = 0.0
    if degrade_it:
        audio, lead = degrade(audio, key, _noises(noises_split, data))
    if over:
        if not _coach:
            _coach.extend(over_coach.bank())
        audio = over_coach.mix(audio, key, _coach, OVER_COACH_DB)
    out = trace(audio)
    out["lead"] = lead
    return out


_noise_cache: dict = {}


def _noises(split: str, data: str) -> list:
    if split not in _noise_cache:
        _noise_cache[split] = noise_bank(manifest(Path(data)), split, Path(data))
    return _noise_cache[split]


def primed() -> np.ndarray:
    """The embeddings a fresh stream starts with (LEAD seconds of silence): the first windows."""
    from voicecoach.hearing.embedding import Embedder
    e = Embedder()
    return e._ring.copy()


def traces(name: str, clips: list, split: str, data: Path, workers: int, model: Optional[str], key: str,
           pinned: bool = False) -> tuple:
    """Each clip's trace, cached in DATA/traces/<split>-<name>-<nets>.npz (made once)."""
    cache = data / "traces" / f"{split}-{name}-{key}.npz"
    ids = [c.get("id", c["path"]) for c in clips]
    if cache.exists():
        z = np.load(cache, allow_pickle=True)
        if list(z["ids"]) == ids:
            return clips, list(z["traces"])
        if pinned:                          # the clips traced before, though more were made since
            known = {c.get("id", c["path"]): c for c in clips}
            if all(i in known for i in z["ids"]):
                return [known[i] for i in z["ids"]], list(z["traces"])
    degrade_it = name.startswith("kokoro")
    jobs = [(c["path"], i, degrade_it, split, str(data), name == "kokoro_over_coach") for c, i in zip(clips, ids)]
    t0 = time.time()
    with get_context("spawn").Pool(workers, initializer=_init, initargs=(model,)) as pool:
        out = pool.map(_trace_one, jobs, chunksize=4)
    print(f"traced {name}: {len(out)} clips in {time.time() - t0:.0f} s", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, ids=np.array(ids), traces=np.array(out, dtype=object))
    return clips, out


def trace_streams(name: str, streams: list, split: str, data: Path, model: Optional[str], key: str) -> list:
    cache = data / "traces" / f"{split}-{name}-{key}.npz"
    if cache.exists():
        return list(np.load(cache, allow_pickle=True)["traces"])
    _init(model)
    out = [trace(a) for a in streams]
    for o in out:
        o["lead"] = 0.0
    np.savez(cache, traces=np.array(out, dtype=object))
    return out


# -- deciding ----------------------------------------------------------------------------------

def head_scores(model: Model, tr: dict, start: np.ndarray) -> np.ndarray:
    """The head's smoothed probabilities at each evaluation, as the stream had them."""
    labels = len(model.labels)
    if not model.head or len(tr["emb"]) == 0 or len(tr["t"]) == 0:
        out = np.zeros((len(tr["t"]), labels), np.float32)
        out[:, 0] = 1.0
        return out
    allemb = np.concatenate([start, tr["emb"].astype(np.float32)])
    windows = np.stack([allemb[j:j + STEPS] for j in range(1, len(tr["emb"]) + 1)])
    probs = model.head_probabilities(windows)
    smooth = np.stack([probs[max(0, j - HEAD_SMOOTH + 1):j + 1].mean(axis=0) for j in range(len(probs))])
    out = np.zeros((len(tr["t"]), labels), np.float32)
    out[:, 0] = 1.0
    have = tr["k"] > 0
    out[have] = smooth[tr["k"][have] - 1]
    return out


def decide(model: Model, tr: dict, head: np.ndarray, blend: float, threshold: dict, gate: float = 0.0) -> list:
    """(phrase, action, t) as LearnedSpotter._decide makes them (no enrolment); with `gate`, the
    head's own score for the action must reach it too (a second opinion that can veto)."""
    labels = list(model.labels)
    if len(tr["t"]) == 0:                  # shorter than the first evaluation (0.5 s)
        return []
    score = (1 - blend) * tr["nets"] + blend * head
    actions: dict = defaultdict(list)
    for i, p in enumerate(labels[1:], 1):
        actions[ACTION[p]].append(i)
    names = list(actions)
    family = np.stack([score[:, actions[a]].sum(axis=1) for a in names], axis=1)
    if gate > 0:           # an action the head itself scores under the gate is not heard at all
        own = np.stack([head[:, actions[a]].sum(axis=1) for a in names], axis=1)
        family = np.where(own >= gate, family, 0.0)
    best = family.argmax(axis=1)
    ok = family[np.arange(len(best)), best] >= np.array([threshold[names[b]] for b in best])
    found, last = [], {}
    for e in np.flatnonzero(ok):
        a, t = names[best[e]], float(tr["t"][e])
        if t - last.get(a, -1e9) < REFRACTORY:
            continue
        last[a] = t
        phrase = labels[max(actions[a], key=lambda i: score[e, i])]
        found.append((phrase, a, t))
    return found


def head_table(model: Model, data: dict, start: np.ndarray) -> dict:
    """The head's scores for every traced clip of every set (computed once per model)."""
    return {name: [head_scores(model, tr, start) for tr in trs] for name, (_, trs) in data.items()}


# -- figures -------------------------------------------------------------------------------------

def share(k: int, n: int) -> dict:
    return {"value": round(k / n, 4) if n else None, "k": k, "n": n, "ci95": wilson(k, n) if n else None}


def per_hour(k: int, seconds: float) -> dict:
    hours = seconds / 3600
    lo, hi = count_interval(k)
    return {"value": round(k / hours, 1), "k": k, "hours": round(hours, 3), "ci95": [round(lo / hours, 1), round(hi / hours, 1)]}


def measure(model: Model, blend: float, threshold: dict, data: dict, start: np.ndarray, gate: float = 0.0,
            heads: Optional[dict] = None) -> dict:
    """Every figure for one model and decision rule over traced sets (`heads`: the head's
    scores per set, if already computed)."""
    res: dict = {}
    heads = heads or head_table(model, data, start)
    dec = {name: [decide(model, tr, hd, blend, threshold, gate) for tr, hd in zip(trs, heads[name])]
           for name, (clips, trs) in data.items()}

    def stops(found: list) -> int:
        return sum(a in STOPS for _, a, _ in found)

    for name in ("kokoro_keyword", "kokoro_over_coach"):
        if name not in data:
            continue
        hits, totals, delays = Counter(), Counter(), []
        for c, tr, found in zip(*data[name], dec[name]):
            end = tr["lead"] + c["word_end"]
            heard = any(a == c["action"] and t <= end + 0.5 for _, a, t in found)
            if heard and c["action"] == "safety":
                delays.append(min(t for _, a, t in found if a == "safety" and t <= end + 0.5) - end)
            where = "inside" if c["id"].endswith("-in") else "end"
            for key in (c["word"], f"all {where}", f"action {c['action']}", "all"):
                totals[key] += 1
                hits[key] += heard
        if name == "kokoro_over_coach":
            res["kokoro_over_coach_recall"] = {k: share(hits[k], totals[k]) for k in sorted(totals)}
            continue
        res["kokoro_recall"] = {k: share(hits[k], totals[k]) for k in sorted(totals)}
        if delays:      # from the word's end (Kokoro's, aligned) to the detection, on the stream's clock
            res["safety_delay_s"] = {q: round(float(np.percentile(delays, p)), 3) for q, p in
                                     (("median", 50), ("p90", 90), ("max", 100))}
    if "synthetic_keyword" in data:     # a word inside a phrase has no end time: heard anywhere in the clip
        hits, totals = Counter(), Counter()
        for c, tr, found in zip(*data["synthetic_keyword"], dec["synthetic_keyword"]):
            until = c["word_end"] + 0.5 if c.get("word_end") is not None else float("inf")
            heard = any(a == c["action"] and t <= until for _, a, t in found)
            for key in (c["word"], f"action {c['action']}", "all"):
                totals[key] += 1
                hits[key] += heard
        res["synthetic_recall"] = {k: share(hits[k], totals[k]) for k in sorted(totals)}
    if "people_stop" in data:
        k = sum(any(a == "stop" for _, a, _ in f) for f in dec["people_stop"])
        res["people_stop_recall"] = share(k, len(dec["people_stop"]))
    for name in ("people_words", "kokoro_confusable"):
        if name in data:
            res[f"{name}_stopping"] = share(sum(stops(f) > 0 for f in dec[name]), len(dec[name]))
            res[f"{name}_any_action"] = share(sum(bool(f) for f in dec[name]), len(dec[name]))
    if "kokoro_confusable" in data:
        by = defaultdict(lambda: [0, 0])
        for c, f in zip(data["kokoro_confusable"][0], dec["kokoro_confusable"]):
            by[c["word"]][0] += stops(f) > 0
            by[c["word"]][1] += 1
        res["confusables_stopping_most"] = sorted(([w, k, n] for w, (k, n) in by.items() if k), key=lambda r: -r[1] / r[2])[:12]
    for name in ("wuw_running", "ljspeech_running", "kokoro_sentence", "kokoro_counting", "people_counting"):
        if name in data:
            clips, trs = data[name]
            secs = sum(float(tr["t"][-1]) - FLUSH_SECONDS + 0.03 if len(tr["t"]) else 0.0 for tr in trs)
            res[f"{name}_false_stops_per_hour"] = per_hour(sum(stops(f) for f in dec[name]), secs)
            res[f"{name}_words"] = dict(Counter(p for f in dec[name] for p, a, _ in f if a in STOPS).most_common(8))
    if "wuw_keyword" in data:
        hits = total = 0
        for c, f in zip(data["wuw_keyword"][0], dec["wuw_keyword"]):
            if "wait" in c["keywords"]:
                total += 1
                hits += any(a == "pause" for _, a, _ in f)
        res["wuw_wait_in_speech_recall"] = share(hits, total)
    return res


def load_all(data_dir: Path, split: str, workers: int, model: Optional[Path] = None, only: tuple = (),
             pinned: bool = False) -> dict:
    """Every set's clips and traces (the log-mel nets of `model`, packaged if None); `pinned`:
    the clips already traced, where more have been made since (to compare models on one set)."""
    items = manifest(data_dir)
    key = nets_key(Model.load(model))
    path = str(model) if model else None
    out = {}
    for name, clips in sorted(sets(items, split, data_dir).items()):
        if not only or name in only:
            out[name] = traces(name, clips, split, data_dir, workers, path, key, pinned)
    streams = counting_streams(items, split, data_dir)
    if streams and (not only or "people_counting" in only):
        out["people_counting"] = ([{}] * len(streams), trace_streams("people_counting", streams, split, data_dir, path, key))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", default="test", choices=("test", "tune"))
    ap.add_argument("--model", type=Path, help="a spotter.npz (default: the packaged one)")
    ap.add_argument("--blend", type=float, help="the head's share (default: the model's)")
    ap.add_argument("--threshold", type=float, help="one threshold for every action (default: the model's)")
    ap.add_argument("--gate", type=float, default=0.0, help="the head's own score must reach this too")
    ap.add_argument("--nets-alone", action="store_true", help="as where onnxruntime is missing")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sets", nargs="*", default=[], help="only these sets (e.g. wuw_running people_stop)")
    ap.add_argument("--pinned", action="store_true", help="the clips already traced, though more were made since")
    ap.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = ap.parse_args()
    if not (args.data / "real.jsonl").exists():
        sys.exit(f"hearing_real: no data in {args.data} (run bench/make_training_data.py first)")
    model = Model.load(args.model)
    if args.nets_alone:
        model = model.nets_alone()
    blend = model.blend if args.blend is None else args.blend
    thr = model.threshold if args.threshold is None else args.threshold
    data = load_all(args.data, args.split, args.workers, args.model, tuple(args.sets), args.pinned)
    # the model's own threshold per action (Model.actions) unless one is given for all
    every = {a: (model.threshold_for(a) if args.threshold is None else thr) for a in set(ACTION.values())}
    res = measure(model, blend, every, data, primed(), args.gate)
    res["model"] = {"path": str(args.model or "packaged"), "blend": blend, "threshold": every, "gate": args.gate,
                    "split": args.split, "nets_alone": args.nets_alone}
    text = json.dumps(res, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
