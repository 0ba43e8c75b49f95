"""The tables of bench/RESULTS.md's section on the climb rule on a GPU, from the committed rows:
python bench/results/h200-climb/tables.py (s0-4: seeds 0-4 with the climb variant; s5-7: seeds
5-7, whose climb rows the call's limit cut)."""
import json
import statistics as st
from pathlib import Path

from scipy.stats import t

HERE = Path(__file__).resolve().parent
CPU = HERE.parent / "cpu2-climb"          # the 2-core climb rows (planned = climb there)
CPU_SHIPPED = HERE.parent / "cpu2-draw1" / "s02"
HAND = ("linear@16", "cosine@16", "plateau@16")


def row(folder, reg, seed, name):
    p = folder / reg / f"seed{seed}" / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def path(r):
    return " -> ".join(f"{s['state']['name']} {s['epochs']}" for s in r["schedule"]["stages"])


def ci(d):
    m = st.mean(d)
    h = t.ppf(0.975, len(d) - 1) * st.stdev(d) / len(d) ** 0.5
    return f"{100 * m:+.1f} [{100 * (m - h):+.1f}, {100 * (m + h):+.1f}], ahead {sum(x > 0 for x in d)} / {len(d)}"


draws = []  # (machine, regime, seed, shipped, climb, {hand: top1}, search ratio)
for reg in ("appearance", "scene"):
    print(f"\n| {reg}, H200 | shipped planner | **climb planner** | climb path (epochs) | x1 starts dropped | search GFLOPs climb / shipped | linear decay @16 | cosine @16 | ReduceLROnPlateau @16 | search's model (shipped) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed in range(5):
        d = HERE / "s0-4"
        a, c = row(d, reg, seed, "planned"), row(d, reg, seed, "planned_climb")
        hand = {k: row(d, reg, seed, k)["top1"] for k in HAND}
        sm = row(d, reg, seed, "search_model")["top1"]
        mark = lambda r: f"{r['top1']:.3f}" + (" (stalled)" if r["replay_shortfall"] >= 0.1 else "")
        print(f"| seed {seed} | {mark(a)} | {mark(c)} | {path(c)} | {c['dropped']} | "
              f"{c['search_gflops']:,.0f} / {a['search_gflops']:,.0f} | "
              + " | ".join(f"{hand[k]:.3f}" for k in HAND) + f" | {sm:.3f} |")
        draws.append(("gpu", reg, seed, a["top1"], c["top1"], hand, c["search_gflops"] / a["search_gflops"]))
    for seed in range(3):
        a, c = row(CPU_SHIPPED, reg, seed, "planned"), row(CPU, reg, seed, "planned")
        hand = {k: row(CPU, reg, seed, k)["top1"] for k in HAND}
        draws.append(("cpu", reg, seed, a["top1"], c["top1"], hand, c["search_gflops"] / a["search_gflops"]))

print()
for machines in (("gpu",), ("gpu", "cpu")):
    for reg in ("appearance", "scene", None):
        ds = [x for x in draws if x[0] in machines and (reg is None or x[1] == reg)]
        label = f"{'+'.join(machines)} {reg or 'both'} ({len(ds)} draws)"
        print(f"{label}: climb {st.mean(x[4] for x in ds):.3f}, shipped {st.mean(x[3] for x in ds):.3f}; "
              f"climb - shipped {ci([x[4] - x[3] for x in ds])}; search ratio {st.mean(x[6] for x in ds):.2f}")
        for k in HAND:
            print(f"    {k} {st.mean(x[5][k] for x in ds):.3f}: climb - {k} {ci([x[4] - x[5][k] for x in ds])}; "
                  f"shipped - {k} {ci([x[3] - x[5][k] for x in ds])}")
