"""Choose the head's share and the thresholds for a model on the `tune` split only
(bench/make_training_data.py: Kokoro's two tune voices, the tune callers and speakers), never
on `test`. The rule: hear the safety words at least as often as the packaged model does there
(within 0.01), and people's "stop" (and at least PEOPLE_STOP), the Kokoro "stop" and the safety
words said over the coach's voice (bench/over_coach.py) as often (within 0.05); of those, the
fewest false stops per hour of running speech (WUW tune callers and the Kokoro tune voices'
sentences together), then the fewest people's words and confusables stopping. Then each of
"stop" and "safety" may take a threshold of its own, by the same rule. The safety words in
bench/make_speech.py's espeak-ng / flite tune voices are reported beside (`synthetic_safety`),
not required: requiring them cost people far more than it kept (docs/hearing-data.md).
Usage: python bench/choose_blend.py --model NPZ [--data DIR] [--out JSON] [--write NPZ] [--baseline NPZ]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from hearing_real import ACTION, DATA, head_table, load_all, measure, primed  # noqa: E402

from voicecoach.hearing.learned import Model  # noqa: E402

BLENDS = (0.3, 0.5, 0.7, 0.85, 1.0)
THRESHOLDS = tuple(round(0.1 + 0.05 * i, 2) for i in range(16))     # 0.10 .. 0.85
OWN = ("stop", "safety")             # actions that may take a threshold of their own
PEOPLE_STOP = 0.9
"""People's "stop" heard on tune at least this often, however poorly the packaged model hears it
(the goal is 0.95; with a baseline of 0.67 the rule once bought 4 false stops an hour with 0.8)."""


def figures(res: dict) -> dict:
    """The few figures the rule looks at."""
    rec = res["kokoro_recall"]
    running = [res[k] for k in ("wuw_running_false_stops_per_hour", "kokoro_sentence_false_stops_per_hour") if k in res]
    stops, hours = sum(r["k"] for r in running), sum(r["hours"] for r in running)
    synthetic = res.get("synthetic_recall", {}).get("action safety", {}).get("value")
    over = res.get("kokoro_over_coach_recall", {}).get("action safety", {}).get("value")
    return {"safety": rec["action safety"]["value"], "synthetic_safety": synthetic, "over_coach_safety": over,
            "kokoro_stop": rec.get("action stop", {}).get("value"),
            "people_stop": res["people_stop_recall"]["value"], "running_per_hour": round(stops / hours, 1),
            "people_words": res["people_words_stopping"]["value"],
            "confusables": res["kokoro_confusable_stopping"]["value"]}


def best(rows: list, base: dict) -> dict | None:
    """The rule (module docstring) over measured rows."""
    fit = [r for r in rows if r["safety"] >= base["safety"] - 0.01
           and r["people_stop"] >= max(base["people_stop"] - 0.05, PEOPLE_STOP)
           and (r["kokoro_stop"] or 0) >= (base["kokoro_stop"] or 0) - 0.05
           and (r["over_coach_safety"] or 0) >= (base["over_coach_safety"] or 0) - 0.05]
    return min(fit, key=lambda r: (r["running_per_hour"], r["people_words"] + r["confusables"], -r["safety"])) if fit else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, help="every row measured, as JSON")
    ap.add_argument("--write", type=Path, help="the model with the chosen share and thresholds")
    ap.add_argument("--baseline", type=Path, help="the model to hear as well as (default: the packaged one)")
    args = ap.parse_args()
    data = load_all(args.data, "tune", 1)
    start = primed()
    shipped = Model.load(args.baseline)
    every = set(ACTION.values())
    base = figures(measure(shipped, shipped.blend, {a: shipped.threshold_for(a) for a in every}, data, start))
    print("packaged", json.dumps(base), flush=True)
    model = Model.load(args.model)
    heads = head_table(model, data, start)
    rows = []
    for blend, thr in itertools.product(BLENDS, THRESHOLDS):
        f = figures(measure(model, blend, {a: thr for a in every}, data, start, 0.0, heads))
        rows.append({"blend": blend, "threshold": thr, "own": {}, **f})
        print(json.dumps(rows[-1]), flush=True)
    chosen = best(rows, base)
    if chosen is not None:
        for action in OWN:                  # one action's threshold moved, the others as chosen
            tried = [chosen]
            for thr in THRESHOLDS:
                own = {**chosen["own"], action: thr}
                threshold = {a: own.get(a, chosen["threshold"]) for a in every}
                f = figures(measure(model, chosen["blend"], threshold, data, start, 0.0, heads))
                tried.append({"blend": chosen["blend"], "threshold": chosen["threshold"], "own": own, **f})
            rows += tried[1:]
            chosen = best(tried, base) or chosen
    print("chosen", json.dumps(chosen))
    if args.out:
        args.out.write_text(json.dumps({"packaged": base, "rows": rows, "chosen": chosen}, indent=1))
    if args.write and chosen is not None:
        own = tuple(sorted((a, t) for a, t in chosen["own"].items() if t != chosen["threshold"]))
        replace(model, blend=chosen["blend"], threshold=chosen["threshold"], actions=own).save(args.write)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
