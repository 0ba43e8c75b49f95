"""The tables of bench/RESULTS.md's section on plan.climb_limit, from the committed rows:
python bench/results/cpu2-climb/tables.py (the shipped planner rows: cpu2-draw1/s02)."""
import json, os, statistics as st
from pathlib import Path
HERE = Path(__file__).resolve().parent
DIRS = {'s02': HERE.parent / 'cpu2-draw1' / 's02', 'climb': HERE}
def row(d, reg, seed, name):
    p=f'{DIRS[d]}/{reg}/seed{seed}/{name}.json'
    return json.load(open(p)) if os.path.exists(p) else None
def f(r, k='top1'): return f"{r[k]:.3f}" if r else '-'
def path(r):
    return ' -> '.join(f"{s['state']['name']} {s['epochs']}" for s in r['schedule']['stages']) if r else '-'
means={}
for reg in ('appearance','scene'):
    print(f'\n| {reg} | shipped planner (draw 1) | **climb planner (draw 1)** | climb path (epochs) | search GFLOPs climb / shipped | search\'s model (climb) | PBT | ASHA | linear decay @16 | cosine @16 | ReduceLROnPlateau @16 |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for seed in (0,1,2):
        a=row('s02',reg,seed,'planned'); c=row('climb',reg,seed,'planned')
        cells=[f(a), f(c), path(c), f"{c['search_gflops']:,.0f} / {a['search_gflops']:,.0f}" if c else '-']
        for k in ('search_model','pbt','asha','linear@16','cosine@16','plateau@16'):
            r=row('climb',reg,seed,k); cells.append(f(r))
            if r and c: means.setdefault((reg,k),[]).append(r['top1']-c['top1'])
        if a and c: means.setdefault((reg,'shipped'),[]).append(a['top1']-c['top1'])
        print(f'| seed {seed} | ' + ' | '.join(cells) + ' |')
for k,v in sorted(means.items()):
    print(k, f"mean delta (row - climb) {100*st.mean(v):+.1f} over {len(v)}: {[round(100*x,1) for x in v]}")
def paired(a, b):
    """(100 x (a - b) test top-1, b's search GFLOPs / a's) per seed where both rows exist."""
    d=[]
    for seed in (0,1,2):
        ra=row('climb',reg,seed,a); rb=row('climb',reg,seed,b)
        if ra and rb: d.append((round(100*(ra['top1']-rb['top1']),1), rb['search_gflops']/ra['search_gflops']))
    return d
# search model vs pbt / asha
for reg in ('appearance','scene'):
    for k in ('pbt','asha'):
        print(reg, 'search_model -', k, [(x, round(r,2)) for x, r in paired('search_model', k)])
# goal 3: random search over whole schedules at 3x the rule's search GFLOPs (random_x3, its
# selected run) against the rule's replay and against the search's own model (a selected run too)
for reg in ('appearance','scene'):
    for k in ('planned','search_model'):
        d=[(x, round(1/r,2)) for x, r in paired('random_x3', k)]
        print(reg, 'random_x3 -', k, d, f"mean {sum(x for x, _ in d)/len(d):+.1f}" if d else '')
