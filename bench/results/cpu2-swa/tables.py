"""The tables of bench/RESULTS.md's section on train.average_last, from the committed rows:
python bench/results/cpu2-swa/tables.py

Each row (train.average_last=0.25) tests its averaged final model (``top1``) and, where it
averaged, the model its last epoch left (``last_epoch_top1``: the same run, so the pair differs
only by the averaging). Rows of ``climb/`` (seeds 0-2) replay the plans of ../cpu2-climb on the
same videos; a row there that averaged nothing, or was measured before rows kept their last
epoch's test, takes its last-epoch figure from ../cpu2-climb (the same bits on one CPU thread).
Rows of ``new/`` (seeds 3-4) come from searches of their own. ``first-rule/``: the planner rows
of appearance seeds 0-2 under the first rule (the window could reach into earlier stages)."""
import json
import statistics as st
from pathlib import Path

from optplan.bench.summary import paired_interval
from optplan.train.average import averaged_epochs

HERE = Path(__file__).resolve().parent
PLAIN = HERE.parent / 'cpu2-climb'
ROWS = ('planned', 'linear@16', 'cosine@16')


def load(p):
    return json.loads(p.read_text()) if p.is_file() else None


def last_epoch(r, plain):
    """Test top-1 of the model the run's last epoch left."""
    if 'last_epoch_top1' in r:
        return r['last_epoch_top1']
    return plain['top1'] if plain else (r['top1'] if 'average_last' not in r else None)


def path(r):
    return ' -> '.join(f"{s['state']['name']} {s['epochs']}" for s in r['schedule']['stages'])


def interval(d):
    i = paired_interval(d)
    lo = f" [{i['lo']:+.1f}, {i['hi']:+.1f}]" if i['lo'] is not None else ''
    return f"{i['mean']:+.1f}{lo} over {len(d)}, ahead on {sum(x > 0 for x in d)}, behind on {sum(x < 0 for x in d)}"


def guarded(r, last):
    """Test top-1 under the rule train.average_last ships with: the average where it validated
    at least as well as the last epoch's model, else that model (rows run before the rule kept
    the average always; both models' validation and test scores are in the row)."""
    if 'average_last' not in r:
        return r['top1']
    return r['top1'] if r['val_score'] >= r['last_epoch_val'] else last


gain = {k: [] for k in ROWS}
kept = {k: [] for k in ROWS}
vs_kept = {k: [] for k in ROWS[1:]}
vs = {k: [] for k in ROWS[1:]}
vs_plain = {k: [] for k in ROWS[1:]}
plain_vs_plain = {k: [] for k in ROWS[1:]}
print('| test top-1 | plan (epochs) | planner, last epoch | **planner, averaged** | epochs averaged | '
      'linear decay @16, last / averaged | cosine @16, last / averaged |')
print('|---|---|---|---|---|---|---|')
for unit in sorted(HERE.glob('*/*/seed*')):
    group, reg, seed = unit.parent.parent.name, unit.parent.name, unit.name
    if group == 'first-rule':
        continue
    a = {k: load(unit / f'{k}.json') for k in ROWS}
    if not all(a.values()):
        continue
    last = {k: last_epoch(a[k], load(PLAIN / reg / seed / f'{k}.json') if group == 'climb' else None) for k in ROWS}
    for k in ROWS:
        gain[k].append(100 * (a[k]['top1'] - last[k]))
        kept[k].append(100 * (guarded(a[k], last[k]) - last[k]))
    for k in ROWS[1:]:
        vs_kept[k].append(100 * (guarded(a['planned'], last['planned']) - guarded(a[k], last[k])))
    for k in ROWS[1:]:
        vs[k].append(100 * (a['planned']['top1'] - a[k]['top1']))
        vs_plain[k].append(100 * (a['planned']['top1'] - last[k]))
        plain_vs_plain[k].append(100 * (last['planned'] - last[k]))
    stages = [s['epochs'] for s in a['planned']['schedule']['stages'] if s['epochs']]
    cells = [path(a['planned']), f"{last['planned']:.3f}", f"**{a['planned']['top1']:.3f}**",
             str(averaged_epochs(sum(stages), 0.25, stages[-1]))]
    cells[2] += '' if guarded(a['planned'], last['planned']) == a['planned']['top1'] else ' (val: last kept)'
    cells += [f"{last[k]:.3f} / {a[k]['top1']:.3f}" + ('' if guarded(a[k], last[k]) == a[k]['top1'] else ' (last kept)')
              for k in ROWS[1:]]
    print(f'| {reg} {seed} | ' + ' | '.join(cells) + ' |')
print()
for k in ROWS:
    print(f'{k}: averaged - last epoch {interval(gain[k])}')
for k in ROWS:
    print(f'{k}: with the validation guard - last epoch {interval(kept[k])}')
for k in ROWS[1:]:
    print(f'planner - {k}, both with the guard: {interval(vs_kept[k])}')
    print(f'planner - {k}, both averaged: {interval(vs[k])}')
    print(f'planner - {k}, both last epoch: {interval(plain_vs_plain[k])}')
    print(f'planner averaged - {k} last epoch: {interval(vs_plain[k])}')
first = sorted((HERE / 'first-rule').glob('*/seed*/planned.json'))
print('first rule (window across stages), appearance planner rows:',
      [(p.parent.name, round(load(p)['top1'], 3)) for p in first])
