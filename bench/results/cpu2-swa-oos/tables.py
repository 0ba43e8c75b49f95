"""The tables of bench/RESULTS.md's section on the out-of-sample check of train.average_last:

  python bench/results/cpu2-swa-oos/tables.py [OUT]

OUT defaults to this folder (the committed rows). Every row there ran with
train.average_last=0.25 on seeds 5-7, which no step of the rule was chosen on; each row records
the test top-1 of the model it kept (``top1``: the average where it validated at least as well as
the last epoch's model, else that one) and of its last epoch's model (``last_epoch_top1``; a row
that averaged nothing has only ``top1``), so each pair is one run and differs only by the rule."""
import json
import sys
from pathlib import Path

from optplan.bench.summary import paired_interval

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
ROWS = ('planned', 'linear@16', 'cosine@16')


def last(r):
    return r.get('last_epoch_top1', r['top1'])


def interval(d):
    i = paired_interval(d)
    lo = f" [{i['lo']:+.1f}, {i['hi']:+.1f}]" if i['lo'] is not None else ''
    return f"{i['mean']:+.1f}{lo} over {len(d)}, ahead on {sum(x > 0 for x in d)}, behind on {sum(x < 0 for x in d)}"


def path(r):
    return ' -> '.join(f"{s['state']['name']} {s['epochs']}" for s in r['schedule']['stages'] if s['epochs'])


def cell(r):
    mark = '' if r.get('averaged_kept', True) or 'last_epoch_top1' not in r else ' (last kept)'
    return f"{last(r):.3f} / {r['top1']:.3f}{mark}" if 'last_epoch_top1' in r else f"{r['top1']:.3f} (none averaged)"


by_regime: dict[str, dict[str, list[float]]] = {}
print('| test top-1 | plan (epochs) | planner, last / kept | search\'s model | linear decay @16, last / kept | '
      'cosine @16, last / kept |')
print('|---|---|---|---|---|---|')
for unit in sorted(OUT.glob('*/seed*')):
    rows = {k: json.loads((unit / f'{k}.json').read_text()) for k in (*ROWS, 'search_model')
            if (unit / f'{k}.json').is_file()}
    if not all(k in rows for k in ROWS):
        continue
    regime = unit.parent.name
    d = by_regime.setdefault(regime, {})
    for k in ROWS:
        d.setdefault(f'{k}: kept - last epoch', []).append(100 * (rows[k]['top1'] - last(rows[k])))
    for k in ROWS[1:]:
        d.setdefault(f'planner - {k}, both kept', []).append(100 * (rows['planned']['top1'] - rows[k]['top1']))
        d.setdefault(f'planner - {k}, both last epoch', []).append(100 * (last(rows['planned']) - last(rows[k])))
    search = f"{rows['search_model']['top1']:.3f}" if 'search_model' in rows else '-'
    print(f"| {regime} {unit.name} | {path(rows['planned'])} | {cell(rows['planned'])} | {search} | "
          + ' | '.join(cell(rows[k]) for k in ROWS[1:]) + ' |')
print()
pooled: dict[str, list[float]] = {}
for regime, figures in sorted(by_regime.items()):
    print(f'{regime}:')
    for name, values in figures.items():
        pooled.setdefault(name, []).extend(values)
        print(f'  {name}: {interval(values)}')
print('all regimes:')
for name, values in pooled.items():
    print(f'  {name}: {interval(values)}')
