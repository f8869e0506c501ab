"""Choose the head's share, the threshold and the head's veto for a model on the `tune` split
only (bench/make_training_data.py: Kokoro's two tune voices, the tune callers and speakers),
never on `test`. The rule: hear the safety words at least as often as the packaged model does
there (within 0.01), and people's "stop" and the Kokoro "stop" as often (within 0.05); of those,
the fewest false stops per hour of running speech (WUW tune callers and the Kokoro tune voices'
sentences together), then the fewest people's words and confusables stopping.
Usage: python bench/choose_blend.py --model NPZ [--data DIR] [--out JSON]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from hearing_real import ACTION, DATA, head_table, load_all, measure, primed  # noqa: E402

from voicecoach.hearing.learned import Model  # noqa: E402

BLENDS = (0.3, 0.5, 0.7, 0.85, 1.0)
THRESHOLDS = (0.3, 0.36, 0.4, 0.5, 0.6, 0.7, 0.8)
GATES = (0.0, 0.2, 0.4, 0.6)


def figures(res: dict) -> dict:
    """The few figures the rule looks at."""
    rec = res["kokoro_recall"]
    running = [res[k] for k in ("wuw_running_false_stops_per_hour", "kokoro_sentence_false_stops_per_hour") if k in res]
    stops, hours = sum(r["k"] for r in running), sum(r["hours"] for r in running)
    return {"safety": rec["action safety"]["value"], "kokoro_stop": rec.get("action stop", {}).get("value"),
            "people_stop": res["people_stop_recall"]["value"], "running_per_hour": round(stops / hours, 1),
            "people_words": res["people_words_stopping"]["value"],
            "confusables": res["kokoro_confusable_stopping"]["value"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    data = load_all(args.data, "tune", 1)
    start = primed()
    shipped = Model.load()
    base = figures(measure(shipped, shipped.blend, {a: shipped.threshold for a in set(ACTION.values())}, data, start))
    print("packaged", json.dumps(base), flush=True)
    model = Model.load(args.model)
    heads = head_table(model, data, start)
    rows = []
    for blend, thr, gate in itertools.product(BLENDS, THRESHOLDS, GATES):
        f = figures(measure(model, blend, {a: thr for a in set(ACTION.values())}, data, start, gate, heads))
        rows.append({"blend": blend, "threshold": thr, "gate": gate, **f})
        print(json.dumps(rows[-1]), flush=True)
    fit = [r for r in rows if r["safety"] >= base["safety"] - 0.01 and r["people_stop"] >= base["people_stop"] - 0.05
           and (r["kokoro_stop"] or 0) >= (base["kokoro_stop"] or 0) - 0.05]
    best = min(fit, key=lambda r: (r["running_per_hour"], r["people_words"] + r["confusables"], -r["safety"])) if fit else None
    print("chosen", json.dumps(best))
    if args.out:
        args.out.write_text(json.dumps({"packaged": base, "rows": rows, "chosen": best}, indent=1))


if __name__ == "__main__":
    main()
