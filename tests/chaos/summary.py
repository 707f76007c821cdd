# SPDX-License-Identifier: MIT
"""Print the figures of a chaos run as a Markdown table (the JSON lines chaos.py --results
writes, one per scenario): operations ok / failed / indeterminate, failover p50 / p99,
lincheck, lost acknowledged writes, digests and logs, and the hostile-client figures."""
import json
import sys


def fmt_ms(v):
    return "-" if v is None else f"{v:.0f}"


def row(r):
    ops = r.get("ops", {})
    fo = r.get("failover_ms") or {}
    digests = r.get("digests") or {}
    same = len({str(v).split("digest:")[-1] for v in digests.values()}) == 1 if digests else False
    applied = str(next(iter(digests.values()), "")).split()[0] if digests else "-"
    lin = {0: "ok", 1: "VIOLATION", 3: "undecided"}.get(r.get("lincheck_exit"), "error")
    return (f"| {r['scenario']} | {r.get('faults', 0)} | {ops.get('ok', 0)} | "
            f"{ops.get('fail', 0)} | {ops.get('unknown', 0)} | "
            f"{fo.get('count', 0)} | {fmt_ms(fo.get('p50'))} | {fmt_ms(fo.get('p99'))} | "
            f"{fmt_ms(fo.get('max'))} | {lin} | {r.get('lost_acked_writes', '-')} | "
            f"{'equal' if same else 'DIFFER'} ({applied}) | "
            f"{r.get('log_entries_compared', 0)} | {'PASS' if r.get('pass') else 'FAIL'} |")


def main(path):
    results = [json.loads(line) for line in open(path) if line.strip()]
    print("| scenario | faults | ok | failed | indeterminate | failovers | p50 ms | p99 ms "
          "| max ms | lincheck | lost acked | digests (applied) | log pairs | result |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(row(r))
    for r in results:
        if "rss" in r:
            print(f"\nhostile: RSS KiB per node {r['rss']}; {r.get('hostile')}")
            print(f"hostile checks: { {k: v['detail'] for k, v in r['checks'].items()} }")
        if "configuration" in r:
            print(f"\nmembership: final voters {r['configuration']}")
        failed = [f"{k}: {v['detail']}" for k, v in r.get("checks", {}).items() if not v["ok"]]
        if failed:
            print(f"\n{r['scenario']} FAILED: " + "; ".join(failed))
    return 0 if all(r.get("pass") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
