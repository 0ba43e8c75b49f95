"""The tables of bench/RESULTS.md's section on train.average_last, from the committed rows:
python bench/results/cpu2-swa/tables.py

Each row here (train.average_last=0.25) trained the very bits of the same row in ../cpu2-climb
(the same videos, plan, schedule, budget and draw, one CPU thread): the only difference is that
its final model averages the weights that ended its last 25% of epochs."""
import json
import os
import statistics as st
from pathlib import Path

from optplan.bench.summary import paired_interval

HERE = Path(__file__).resolve().parent
PLAIN = HERE.parent / 'cpu2-climb'
ROWS = ('planned', 'linear@16', 'cosine@16')


def row(base, reg, seed, name):
    p = base / reg / f'seed{seed}' / f'{name}.json'
    return json.loads(p.read_text()) if os.path.exists(p) else None


def path(r):
    return ' -> '.join(f"{s['state']['name']} {s['epochs']}" for s in r['schedule']['stages'])


def interval(d):
    i = paired_interval(d)
    lo = f" [{i['lo']:+.1f}, {i['hi']:+.1f}]" if i['lo'] is not None else ''
    return f"{i['mean']:+.1f}{lo}, ahead on {sum(x > 0 for x in d)} / {len(d)}"


gain, vs = {k: [] for k in ROWS}, {k: [] for k in ROWS[1:]}
vs_plain = {k: [] for k in ROWS[1:]}
print('| test top-1 | plan (epochs) | planner, last epoch | **planner, averaged** | linear decay @16, last / averaged | cosine @16, last / averaged |')
print('|---|---|---|---|---|---|')
for reg in ('appearance', 'scene'):
    for seed in (0, 1, 2):
        a = {k: row(HERE, reg, seed, k) for k in ROWS}
        b = {k: row(PLAIN, reg, seed, k) for k in ROWS}
        if not all(a.values()):
            continue
        for k in ROWS:
            gain[k].append(100 * (a[k]['top1'] - b[k]['top1']))
        for k in ROWS[1:]:
            vs[k].append(100 * (a['planned']['top1'] - a[k]['top1']))
            vs_plain[k].append(100 * (a['planned']['top1'] - b[k]['top1']))
        cells = [path(a['planned']), f"{b['planned']['top1']:.3f}", f"**{a['planned']['top1']:.3f}**"]
        cells += [f"{b[k]['top1']:.3f} / {a[k]['top1']:.3f}" for k in ROWS[1:]]
        print(f'| {reg} seed {seed} | ' + ' | '.join(cells) + ' |')
print()
for k in ROWS:
    print(f'averaged - last epoch, {k}: {interval(gain[k])}')
for k in ROWS[1:]:
    print(f'planner averaged - {k} averaged: {interval(vs[k])}')
    print(f'planner averaged - {k} last epoch: {interval(vs_plain[k])}')
print('means:', {k: round(st.mean(v), 1) for k, v in gain.items() if v})
