"""Live sessions recorded by bench/echotrace.py (bench/echoload.py --trace), heard again offline:
the microphone frames and the played frames go through this tree's echo canceller in the order
they reached it live, the cleaned audio through the routine's spotter (in this process, as a
file session hears), and each word heard is judged as the coach judges it (its own voice or
the person's). So a change to the canceller is measured on the audio that defeated it, before
a live run.

A session is replayed up to where it ended live (a session that stopped itself live said other
lines after that point). Per session: the words heard with their residue (`left_db`), which of
them would stop the session (a safety word or "stop" not taken for the coach's own voice), and
the canceller's online reduction over the coach's speech (microphone against cleaned power
where the coach played, after its first second).
With --person LIST each recorded own-voice session is heard again with a person's word (the
WAVs LIST names, in turn) added to the microphone 0.3 s after "three", --person-db (default
-10) against the coach's echo there: a held-out voice over the counting, the same audio for
every model compared.
Usage: .venv/bin/python bench/echoreplay.py [--model SPOTTER.npz] [--person LIST [--person-db DB]] TRACE_DIR ...
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_routine  # noqa: E402
from echoload import SETUP  # noqa: E402

from voicecoach import load_routine  # noqa: E402
from voicecoach.audio import FRAME, FRAME_SECONDS, RATE, read_wav, speech_power  # noqa: E402
from voicecoach.coach import CONTROL_MARGIN, is_own_voice  # noqa: E402
from voicecoach.hearing.echo import EchoCanceller, mostly_echo, only_echo  # noqa: E402
from voicecoach.hearing.engines import make_spotter  # noqa: E402
from voicecoach.hearing.learned import LearnedSpotter, Model  # noqa: E402
from voicecoach.launch import render  # noqa: E402
from voicecoach.playback import Player  # noqa: E402
from voicecoach.routine import vocabulary  # noqa: E402
from voicecoach.settings import PersonSettings  # noqa: E402

ECHO_MARGIN = 0.6
"""coach.Coach.echo_margin."""


def spoken(events: List[dict], clips: Dict[str, object]) -> Player:
    """The coach's lines as the session placed them (its own-voice record)."""
    player = Player(history_seconds=1e9)
    for e in events:
        if e["type"] == "say" and e["text"] in clips:
            clip = clips[e["text"]]
            player.schedule(e["text"], clip.samples, e["at"], clip.words)  # type: ignore[attr-defined]
        elif e["type"] == "cut":
            player.cut(e["at"])
    return player


def own_voice(word: str, action: str, start: float, end: float, echo_db: Optional[float], player: Player,
              family: List[str]) -> bool:
    """coach.Coach._own_voice on a recorded timeline."""
    if action in ("pause", "resume", "repeat") and player.speaking(start, end, CONTROL_MARGIN):
        return True
    if only_echo(echo_db):
        return True
    if not mostly_echo(echo_db):
        return False
    said = player.speaking(start, end, ECHO_MARGIN)
    return any(is_own_voice(p, said) for p in [word] + family)


def add_person(t: dict, three: float, voice: np.ndarray, person_db: float) -> np.ndarray:
    """The microphone frames with a person's word added 0.3 s after the coach's "three" (as
    bench/echoload.py plays it), `person_db` against the loudness of the coach's echo in the
    second after "three": what the microphone would have heard had the person spoken then."""
    mic = t["mic"].reshape(-1, FRAME).astype(np.float64)
    at = int(np.searchsorted(t["mic_counted"], three + 0.3))
    echo = mic[at - 30:at + 70].ravel()
    gain = np.sqrt(speech_power(echo) * 10 ** (person_db / 10) / speech_power(voice))
    flat = mic.ravel()
    n = min(len(voice), len(flat) - at * FRAME)
    flat[at * FRAME:at * FRAME + n] += gain * voice[:n]
    return np.clip(flat, -32768, 32767).astype(np.int16).reshape(-1, FRAME)


def replay(trace: Path, routine, clips: Dict[str, object], model: Optional[Model] = None,
           voice: Optional[np.ndarray] = None, person_db: float = -10.0) -> dict:
    t = dict(np.load(trace))
    events = [json.loads(line) for line in trace.with_suffix(".jsonl").read_text().splitlines()
              if line.endswith("}")]
    ended = next((e for e in events if e["type"] == "ended"), {"at": 1e9})
    person = trace.name.startswith("pain")
    three = next((e["at"] for e in events if e["type"] == "say" and e["text"] == "three"), None)
    if voice is not None and three is not None and not person:
        t["mic"], person = add_person(t, three, voice, person_db), True
    player = spoken(events, clips)
    keywords = vocabulary(routine)
    spotter = LearnedSpotter(keywords, model) if model else make_spotter(keywords, "auto")
    canceller = EchoCanceller()
    played, mic = t["played"].reshape(-1, FRAME), t["mic"].reshape(-1, FRAME)
    order = sorted([(a, 0, i) for i, a in enumerate(t["played_at"])] + [(a, 1, i) for i, a in enumerate(t["mic_at"])])
    times: List[float] = []
    heard, removed, before = [], 0.0, 0.0
    for _, kind, i in order:
        if kind == 0:
            canceller.played(float(t["played_start"][i]), played[i])
            continue
        out = canceller.clean(float(t["mic_stamp"][i]), mic[i])
        times.append(canceller.counted)
        if canceller.counted > ended["at"]:
            break
        if canceller.counted > 1.0 and player.speaking(canceller.counted, canceller.counted + FRAME_SECONDS, 0.0):
            before += float(np.sum(mic[i].astype(np.float64) ** 2))
            removed += float(np.sum(out.astype(np.float64) ** 2))
        for d in spotter.process(out):
            def at(stream_t: float) -> float:
                k = int(stream_t / FRAME_SECONDS)
                return times[min(max(k, 0), len(times) - 1)] + (stream_t - k * FRAME_SECONDS)
            start, end = at(d.start), at(d.t)
            db = canceller.left_db(start, end)
            family = [k.phrase for k in keywords if k.action == d.action]
            own = own_voice(d.word, d.action, start, end, db, player, family)
            persons = person and three is not None and start > three - 0.3 and d.word.startswith("pain")
            heard.append({"word": d.word, "start": round(start, 2), "echo_db": None if db is None else round(db, 1),
                          "own": own, "stops": not own and d.action in ("safety", "stop"), "persons": persons})
    before_person = [h for h in heard if h["stops"] and (three is None or h["start"] <= three - 0.3)]
    stops = [h for h in heard if h["stops"] and not h["persons"]]
    pain = [h for h in heard if h["persons"]]
    live = [e for e in events if e["type"] in ("heard", "discounted")]
    return {"session": f"{trace.parent.name}/{trace.stem}", "live_end": (ended.get("outcome"), ended.get("word")),
            "self_stop": bool(stops), "first": stops[0] if stops else None,
            "person_heard": None if not person else [(h["echo_db"], h["stops"]) for h in pain],
            # the session ends for safety once the person has spoken (whichever word it heard)
            "person_stopped": None if not person else any(h["stops"] for h in heard) and not before_person,
            "reduction_db": round(10 * np.log10(before / max(removed, 1.0)), 1) if before else None,
            "heard": heard, "live_heard": [(e["word"], e["type"], round(e["echo_db"], 1) if e["echo_db"] is not None
                                            else None) for e in live]}


def main() -> int:
    args = sys.argv[1:]
    model, voices, person_db = None, [], -10.0
    while args[:1] and args[0].startswith("--"):
        if args[0] == "--model":      # another spotter model than the packaged one (bench/choose_blend.py)
            model = Model.load(Path(args[1]))
        elif args[0] == "--person":   # a file listing WAVs: one is added to each own-voice session in turn
            voices = [read_wav(Path(p)) for p in Path(args[1]).read_text().split()]
        elif args[0] == "--person-db":
            person_db = float(args[1])
        args = args[2:]
    traces = sorted(p for d in args for p in Path(d).glob("*.npz") if not p.stem.endswith("-monitors"))
    if voices:                        # the recorded own-voice sessions, each with a person's word added
        traces = [p for p in traces if p.stem.startswith("own")]
    with tempfile.TemporaryDirectory() as work:
        routine = load_routine(write_routine(Path(work), 5, SETUP))
    clips = render(routine, PersonSettings().voice_for(routine))
    rows = []
    for n, trace in enumerate(traces):
        row = replay(trace, routine, clips, model, voices[n % len(voices)] if voices else None, person_db)
        rows.append(row)
        first = row["first"]
        print(f"{row['session']:28s} live {row['live_end']}  replay: "
              f"{'SELF-STOP ' + first['word'] + ' ' + str(first['echo_db']) if first else 'no self-stop'}"
              f"  reduction {row['reduction_db']} dB" + (f"  person's pain {row['person_heard']}"
                                                          f" stopped {row['person_stopped']}" if row["person_heard"] is not None else ""),
              flush=True)
    persons = [r for r in rows if r["person_stopped"] is not None]
    if persons:
        print(f"stopped for safety after the person spoke: {sum(r['person_stopped'] for r in persons)}/{len(persons)}")
    print(f"self-stops in replay: {sum(r['self_stop'] for r in rows)}/{len(rows)}; live: "
          f"{sum(r['live_end'][0] != 'completed' and not (r['session'].split('/')[-1].startswith('pain') and r['live_end'][1] == 'pain') for r in rows)}/{len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
