#!/usr/bin/env python3
"""Print squall against its peers from one Google Benchmark JSON file.

Reads the output of ``--benchmark_format=json`` (or ``--benchmark_out``)
whose benchmark names start ``<system>/<case>``, e.g. ``libuv/timer_fire``
or ``squall/post_callback/real_time``; anything after the case (such as the
``/real_time`` Google Benchmark appends) is ignored. Prints one table:

    case | squall ns/op | libuv ns/op | asio ns/op | squall / best peer | target | met?

ns/op is 1e9 / items_per_second when the row has it (the benchmarks run a
batch per iteration and count operations as items), else real_time in ns.
When the run used repetitions, the ``median`` aggregate is used; without
aggregates, the median of the repetitions. A missing value prints "-".

Below the table, a note gives the machine's CPU count and load average when
the run started, and names every figure whose repetitions spread by more
than NOISY_CV (coefficient of variation), so a noisy run is not read as a
regression.

Standard library only, so it runs wherever the benchmark does.
"""

import argparse
import json
import statistics
import sys

SYSTEMS = ("squall", "libuv", "asio")
PEERS = ("libuv", "asio")

# case -> (kind, limit). "ratio": squall ns/op divided by the best (lowest)
# peer's must be at most limit. "absolute": squall ns/op must be at most limit.
TARGETS = {
    "post_callback": ("ratio", 1.0),
    "timer_fire": ("ratio", 1.0),
    "timer_cancel": ("ratio", 1.0),
    "cross_thread_post": ("ratio", 1.0),
    "coro_sync_call": ("absolute", 30.0),
    "coro_roundtrip": ("absolute", 150.0),
}

NS_PER_UNIT = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

# A figure whose repetitions' coefficient of variation exceeds this is named
# in the note under the table.
NOISY_CV = 0.05

MISSING = "-"


def ns_per_op(row):
    """The row's cost of one operation in nanoseconds."""
    items_per_second = row.get("items_per_second")
    if items_per_second:
        return 1e9 / items_per_second
    return row["real_time"] * NS_PER_UNIT[row.get("time_unit", "ns")]


def system_and_case(row):
    """(system, case) from the row's name, or None if it is not one of ours."""
    # run_name is the name without the aggregate suffix ("_median").
    parts = row.get("run_name", row["name"]).split("/")
    if len(parts) < 2 or parts[0] not in SYSTEMS or parts[1] not in TARGETS:
        return None
    return parts[0], parts[1]


def collect(benchmarks):
    """{(system, case): ns/op}, preferring the median aggregate."""
    medians = {}
    repetitions = {}
    for row in benchmarks:
        key = system_and_case(row)
        if key is None or row.get("error_occurred"):
            continue
        if row.get("run_type") == "aggregate":
            if row.get("aggregate_name") == "median":
                medians[key] = ns_per_op(row)
        else:
            repetitions.setdefault(key, []).append(ns_per_op(row))
    results = {key: statistics.median(values) for key, values in repetitions.items()}
    results.update(medians)
    return results


def spreads(benchmarks):
    """{(system, case): coefficient of variation} from the "cv" aggregates
    (Google Benchmark computes them over the repetitions), else from the
    repetitions themselves when there are at least two."""
    cvs = {}
    repetitions = {}
    for row in benchmarks:
        key = system_and_case(row)
        if key is None or row.get("error_occurred"):
            continue
        if row.get("run_type") == "aggregate":
            if row.get("aggregate_name") == "cv":
                # items_per_second's cv is the relative spread of ns/op too,
                # to first order; real_time's when there are no items.
                cvs[key] = row.get("items_per_second", row.get("real_time"))
        else:
            repetitions.setdefault(key, []).append(ns_per_op(row))
    for key, values in repetitions.items():
        if key not in cvs and len(values) >= 2 and statistics.mean(values) > 0:
            cvs[key] = statistics.stdev(values) / statistics.mean(values)
    return cvs


def describe_run(context, cvs):
    """The note under the table: where the run happened and what was noisy."""
    lines = []
    cpus = context.get("num_cpus")
    load = context.get("load_avg")
    if cpus and load:
        busy = " (busy: expect noise)" if load[0] > 0.5 * cpus else ""
        lines.append(f"machine: {cpus} CPUs, load average {load[0]:.2f} at the start{busy}")
    noisy = [f"{system}/{case} {cv:.0%}" for (system, case), cv in sorted(cvs.items()) if cv > NOISY_CV]
    if noisy:
        lines.append(f"spread over {NOISY_CV:.0%} between repetitions: " + ", ".join(noisy))
    return "\n".join(lines)


def describe_target(kind, limit):
    if kind == "ratio":
        return f"<= {limit:.2f}x best peer"
    return f"<= {limit:g} ns"


def judge(kind, limit, squall, ratio):
    """"yes", "no", or MISSING when the numbers it needs are absent."""
    value = ratio if kind == "ratio" else squall
    if value is None:
        return MISSING
    return "yes" if value <= limit else "no"


def table_rows(results):
    """One list of cells per case, in TARGETS order."""
    rows = []
    for case, (kind, limit) in TARGETS.items():
        ns = {system: results.get((system, case)) for system in SYSTEMS}
        peers = [ns[peer] for peer in PEERS if ns[peer] is not None]
        squall = ns["squall"]
        ratio = squall / min(peers) if squall is not None and peers else None
        rows.append([
            case,
            *(MISSING if ns[s] is None else f"{ns[s]:.1f}" for s in SYSTEMS),
            MISSING if ratio is None else f"{ratio:.2f}",
            describe_target(kind, limit),
            judge(kind, limit, squall, ratio),
        ])
    return rows


def format_table(header, rows):
    """A Markdown table with padded columns; numbers right-aligned."""
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]

    def line(cells, numeric_right):
        padded = []
        for i, cell in enumerate(cells):
            right = numeric_right and 1 <= i <= 4
            padded.append(cell.rjust(widths[i]) if right else cell.ljust(widths[i]))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header, False), rule, *(line(r, True) for r in rows)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file", help="Google Benchmark JSON output")
    args = parser.parse_args(argv)

    try:
        with open(args.json_file, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        print(f"report.py: cannot read {args.json_file}: {e}", file=sys.stderr)
        return 2
    benchmarks = data.get("benchmarks", [])

    header = ["case", *(f"{s} ns/op" for s in SYSTEMS), "squall / best peer", "target", "met?"]
    print(format_table(header, table_rows(collect(benchmarks))))
    note = describe_run(data.get("context", {}), spreads(benchmarks))
    if note:
        print()
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
