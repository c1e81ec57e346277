#!/usr/bin/env python3
"""The table of bench/http_client: GETs/s of each HTTP client against nginx.

    python3 bench/http_client_report.py RESULTS.jsonl

RESULTS.jsonl holds one {"run": ...} line (options, CPUs, load average) and
one {"result": {"client", "concurrency", "rps"}} line per measurement.

    test | native | curl | tornado | wrk | native/curl | native/tornado | native/wrk | target met

Targets (issue 6): native at least 1.0x the curl backend and 20x Tornado's
client; wrk's own figure is the ceiling (nginx's answer rate with a client
that does nothing else). A missing figure prints "-". Standard library only.
"""

import json
import sys

CLIENTS = ("native", "curl", "tornado", "wrk")
MISSING = "-"
MIN_VS_CURL = 1.0
MIN_VS_TORNADO = 20.0


def load(path):
    run, results = {}, {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            obj = json.loads(line)
            if "run" in obj:
                run = obj["run"]
            elif "result" in obj:
                r = obj["result"]
                results[(r["client"], r["concurrency"])] = r.get("rps")
    return run, results


def fmt(value):
    return MISSING if value is None else f"{value:,.0f}"


def ratio(a, b):
    if a is None or not b:
        return None
    return a / b


def fmt_ratio(value):
    return MISSING if value is None else f"{value:.2f}x"


def table(run, results):
    concurrencies = sorted({c for (_, c) in results})
    header = ["test", "native req/s", "curl req/s", "tornado req/s", "wrk req/s",
              "native/curl", "native/tornado", "native/wrk", "target met"]
    rows = []
    for c in concurrencies:
        name = "sequential, 1 connection" if c == 1 else f"{c} concurrent"
        v = {client: results.get((client, c)) for client in CLIENTS}
        vs_curl = ratio(v["native"], v["curl"])
        vs_tornado = ratio(v["native"], v["tornado"])
        vs_wrk = ratio(v["native"], v["wrk"])
        if vs_curl is None or vs_tornado is None:
            met = MISSING
        else:
            met = "yes" if vs_curl >= MIN_VS_CURL and vs_tornado >= MIN_VS_TORNADO else "no"
        rows.append([name, fmt(v["native"]), fmt(v["curl"]), fmt(v["tornado"]), fmt(v["wrk"]),
                     fmt_ratio(vs_curl), fmt_ratio(vs_tornado), fmt_ratio(vs_wrk), met])
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        out = []
        for i, cell in enumerate(cells):
            out.append(str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i]))
        return "| " + " | ".join(out) + " |"

    lines = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [line(r) for r in rows]
    notes = []
    if run:
        notes.append(f"{run.get('duration')} s per measurement after {run.get('warmup')} s of warm-up; "
                     f"{run.get('cpus')} CPUs, load average {run.get('loadavg', 0):.2f} at the start "
                     "(nginx on CPU 0, clients on CPU 1).")
    notes.append(f"Targets: native >= {MIN_VS_CURL:.1f}x curl and >= {MIN_VS_TORNADO:.0f}x Tornado; "
                 "wrk is the ceiling.")
    return "\n".join(lines + [""] + notes)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    run, results = load(argv[1])
    print(table(run, results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
