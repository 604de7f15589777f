"""Paired ratios from a bench runs.tsv: median over repeats of a/b (rate and server CPU)."""
import csv, sys, statistics as st
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
pairs = [p.split('/') for p in sys.argv[2:]]
data = {}
for r in rows:
    data[(r['rep'], r['server'], r['conc'])] = r
concs = sorted({int(r['conc']) for r in rows})
reps = sorted({r['rep'] for r in rows})
for a, b in pairs:
    out = []
    for c in concs:
        rr, cc = [], []
        for rep in reps:
            x, y = data.get((rep, a, str(c))), data.get((rep, b, str(c)))
            if x and y:
                rr.append(float(x['rate']) / float(y['rate']))
                cc.append(float(x['server_cpu_us_per_conn']) / float(y['server_cpu_us_per_conn']))
        if rr:
            out.append(f"C={c}: rate {st.median(rr):.2f} cpu {st.median(cc):.2f}")
    print(f"{a}/{b}: " + "; ".join(out))
# worst connection per server at the highest concurrency
for s in sorted({r['server'] for r in rows}):
    m = [int(r['max_us']) for r in rows if r['server'] == s and r['conc'] == str(concs[-1])]
    print(f"{s}: max_us at C={concs[-1]}: median {st.median(m)/1000:.1f} ms, worst {max(m)/1000:.1f} ms")
