#!/usr/bin/env python3
"""The Python side of bench/http_compare: squall's hello against nginx and Tornado.

Subcommands (bench/http_compare calls them; `table` is also for people):

    table RESULTS.jsonl      print the comparison table from a finished run
    record ...               parse one wrk run's output, append it to RESULTS
    run-info ...             append the run's CPUs, load average and options
    problem TEXT             append a problem for the note under the table
    check PORT               check one server's answers and keep-alive
    children PID             the pids whose parent is PID (nginx's worker)
    free-port                print a free high port on 127.0.0.1
    wait-port PORT           wait until something accepts on 127.0.0.1:PORT

RESULTS.jsonl holds one JSON object per line: {"run": ...} describes the run
(load average, CPUs, options), {"wrk": ...} is one wrk run of one server,
{"problem": ...} is something seen that the table's reader must know.

The table is the median over rounds of each figure:

    test | squall req/s | nginx req/s | tornado req/s | squall/nginx |
    squall/tornado | p99 squall | p99 nginx | CPU us/req squall |
    CPU us/req nginx | target met

Targets (DESIGN.md, "Performance principles"): squall's req/s at least
1.0x nginx's and 25x Tornado's, its server CPU time per request at most
nginx's, its p99 latency at most 1.2x nginx's. A missing figure prints "-".

A second table shows the web framework's rows (squall-web: examples/hello_web,
the same endpoints through Application and RequestHandler), named
web-plaintext and web-json:

    test | web req/s | squall req/s | tornado req/s | web/squall |
    web/tornado | p99 web | CPU us/req web | target met

with the targets web req/s at least 0.85x the raw server's (hello) and 20x
Tornado's (whose peer is itself a tornado.web application).

Standard library only.
"""

import argparse
import json
import os
import re
import socket
import statistics
import sys
import time

SERVERS = ("squall", "nginx", "tornado")
ALL_SERVERS = ("squall", "squall-web", "nginx", "tornado")
MISSING = "-"

# Targets for squall, per row.
MIN_RPS_VS_NGINX = 1.0
MIN_RPS_VS_TORNADO = 25.0
MAX_CPU_VS_NGINX = 1.0
MAX_P99_VS_NGINX = 1.2
# Targets for squall-web (the web framework), per row.
MIN_WEB_VS_RAW = 0.85
MIN_WEB_VS_TORNADO = 20.0

# A figure whose rounds spread by more than this is named under the table.
NOISY_CV = 0.10


# ---------------------------------------------------------------- wrk output

UNIT_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def duration_us(text):
    """wrk's "1.23ms" / "850.00us" / "2.00s" in microseconds."""
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * UNIT_US[m.group(2)]


def parse_wrk(text):
    """The figures of one `wrk --latency` run: requests, seconds, rps,
    p99_us, non_2xx, socket errors. Raises ValueError if it is not there."""
    out = {}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h)", text, re.M)
    if not m:
        raise ValueError("no 'N requests in T' line")
    out["requests"] = int(m.group(1))
    out["seconds"] = float(m.group(2)) * UNIT_US[m.group(3)] / 1e6
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    if not m:
        raise ValueError("no 'Requests/sec' line")
    out["rps"] = float(m.group(1))
    m = re.search(r"^\s*99%\s+(\S+)", text, re.M)
    # wrk prints 0 for a percentile its coordinated-omission correction
    # pushed out of its histogram's range (seen with deep pipelining under
    # load): no figure rather than a wrong one.
    out["p99_us"] = duration_us(m.group(1)) if m else None
    if not out["p99_us"]:
        out["p99_us"] = None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                    map(int, m.groups()))) if m else {}
    return out


# ------------------------------------------------------------------ /proc

def children(pid):
    """The pids whose parent is pid (nginx's workers)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:  # field 4: ppid
            out.append(int(entry))
    return out


# --------------------------------------------------------------- sockets

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not os.path.exists(f"/proc/{pid}"):
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value (last one wins)
        self.body = body


def read_response(sock, buf):
    """One HTTP/1.1 response from sock; buf holds bytes already read and
    keeps what follows the response. Returns (Response, buf), or (None, buf)
    when the peer closed before a whole response."""
    def fill():
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError
        return chunk

    try:
        while b"\r\n\r\n" not in buf:
            buf += fill()
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                while b"\r\n" not in buf:
                    buf += fill()
                size_line, _, buf = buf.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(buf) < size + 2:
                    buf += fill()
                body += buf[:size]
                buf = buf[size + 2:]
                if size == 0:
                    break
        else:
            length = int(headers.get("content-length", "0"))
            while len(buf) < length:
                buf += fill()
            body, buf = buf[:length], buf[length:]
        return Response(status, headers, body), buf
    except EOFError:
        return None, buf


EXPECTED = {
    "/plaintext": ("text/plain", lambda body: body == b"Hello, World!"),
    "/json": ("application/json",
              lambda body: json.loads(body) == {"message": "Hello, World!"}),
}


def check_response(path, resp):
    """Problems with one response to GET path, as a list of strings."""
    if resp is None:
        return [f"GET {path}: connection closed before a whole response"]
    problems = []
    content_type, body_ok = EXPECTED[path]
    if resp.status != 200:
        problems.append(f"GET {path}: status {resp.status}")
    got_type = resp.headers.get("content-type", "")
    if got_type.split(";")[0].strip().lower() != content_type:
        problems.append(f"GET {path}: Content-Type {got_type!r}, expected {content_type}")
    try:
        ok = body_ok(resp.body)
    except ValueError:
        ok = False
    if not ok:
        problems.append(f"GET {path}: unexpected body {resp.body[:80]!r}")
    if resp.headers.get("connection", "").lower() == "close":
        problems.append(f"GET {path}: answered 'Connection: close' to an HTTP/1.1 request")
    if "date" not in resp.headers:
        problems.append(f"GET {path}: no Date header")
    return problems


def request(path):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def check_server(port):
    """Problems seen in one server's answers: both endpoints on one
    keep-alive connection, then two pipelined requests, then an unknown
    path (which must get a 404, not a hang or a close without answer)."""
    problems = []
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            buf = b""
            for path in ("/plaintext", "/json", "/plaintext"):
                sock.sendall(request(path))
                resp, buf = read_response(sock, buf)
                problems += check_response(path, resp)
                if resp is None:
                    problems.append("the server does not keep the connection alive")
                    break
            else:
                sock.sendall(request("/plaintext") + request("/json"))
                for path in ("/plaintext", "/json"):
                    resp, buf = read_response(sock, buf)
                    problems += [p + " (pipelined)" for p in check_response(path, resp)]
                    if resp is None:
                        break
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(request("/no-such-page"))
            resp, _ = read_response(sock, b"")
            if resp is None or resp.status != 404:
                got = "no answer" if resp is None else f"status {resp.status}"
                problems.append(f"GET /no-such-page: {got}, expected 404")
    except (OSError, ValueError, IndexError) as e:
        problems.append(f"check failed: {e!r}")
    return problems


# ----------------------------------------------------------------- results

def load_results(path):
    runs, wrk, problems = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            obj = json.loads(line)
            if "run" in obj:
                runs.append(obj["run"])
            elif "wrk" in obj:
                wrk.append(obj["wrk"])
            elif "problem" in obj:
                problems.append(obj["problem"])
    return runs, wrk, problems


def test_order(wrk):
    seen = []
    for row in wrk:
        if row["test"] not in seen:
            seen.append(row["test"])
    return seen


def medians(wrk):
    """{(server, test): {"rps", "p99_us", "cpu_us", "rounds", "cv"}}."""
    groups = {}
    for row in wrk:
        groups.setdefault((row["server"], row["test"]), []).append(row)
    out = {}
    for key, rows in groups.items():
        fig = {"rounds": len(rows)}
        for name in ("rps", "p99_us", "cpu_us"):
            values = [r[name] for r in rows if r.get(name) is not None]
            fig[name] = statistics.median(values) if values else None
        rps = [r["rps"] for r in rows]
        fig["cv"] = (statistics.stdev(rps) / statistics.mean(rps)
                     if len(rps) >= 2 and statistics.mean(rps) > 0 else 0.0)
        out[key] = fig
    return out


def fmt(value, spec):
    return MISSING if value is None else format(value, spec)


def fmt_us(us):
    """A latency: us below 1 ms, ms above."""
    if us is None:
        return MISSING
    return f"{us:.0f}us" if us < 1000 else f"{us / 1000:.2f}ms"


def ratio(a, b):
    return a / b if a is not None and b else None


def judge(s, n, t):
    """"yes", "no (why)", or MISSING when squall or nginx has no figures."""
    if s is None or n is None or s["rps"] is None or n["rps"] is None:
        return MISSING
    failed = []
    if s["rps"] < MIN_RPS_VS_NGINX * n["rps"]:
        failed.append(f"req/s<{MIN_RPS_VS_NGINX:g}x nginx")
    if t is not None and t["rps"] and s["rps"] < MIN_RPS_VS_TORNADO * t["rps"]:
        failed.append(f"req/s<{MIN_RPS_VS_TORNADO:g}x tornado")
    if s["cpu_us"] is not None and n["cpu_us"] is not None and s["cpu_us"] > MAX_CPU_VS_NGINX * n["cpu_us"]:
        failed.append("CPU>nginx")
    if s["p99_us"] is not None and n["p99_us"] is not None and s["p99_us"] > MAX_P99_VS_NGINX * n["p99_us"]:
        failed.append(f"p99>{MAX_P99_VS_NGINX:g}x nginx")
    return "yes" if not failed else "no: " + ", ".join(failed)


def table_rows(wrk):
    figs = medians(wrk)
    rows = []
    for test in test_order(wrk):
        s, n, t = (figs.get((server, test)) for server in SERVERS)
        get = lambda f, name: None if f is None else f[name]
        rows.append([
            test,
            fmt(get(s, "rps"), ",.0f"),
            fmt(get(n, "rps"), ",.0f"),
            fmt(get(t, "rps"), ",.0f"),
            fmt(ratio(get(s, "rps"), get(n, "rps")), ".2f"),
            fmt(ratio(get(s, "rps"), get(t, "rps")), ".1f"),
            fmt_us(get(s, "p99_us")),
            fmt_us(get(n, "p99_us")),
            fmt(get(s, "cpu_us"), ".2f"),
            fmt(get(n, "cpu_us"), ".2f"),
            judge(s, n, t),
        ])
    return rows


def web_rows(wrk):
    """The web framework's rows: squall-web against hello and Tornado."""
    figs = medians(wrk)
    rows = []
    for test in test_order(wrk):
        w, s, t = (figs.get((server, test)) for server in ("squall-web", "squall", "tornado"))
        if w is None:
            continue
        get = lambda f, name: None if f is None else f[name]
        vs_raw = ratio(get(w, "rps"), get(s, "rps"))
        vs_tornado = ratio(get(w, "rps"), get(t, "rps"))
        failed = []
        if vs_raw is not None and vs_raw < MIN_WEB_VS_RAW:
            failed.append(f"<{MIN_WEB_VS_RAW:g}x squall")
        if vs_tornado is not None and vs_tornado < MIN_WEB_VS_TORNADO:
            failed.append(f"<{MIN_WEB_VS_TORNADO:g}x tornado")
        verdict = MISSING if vs_raw is None else ("yes" if not failed else "no: " + ", ".join(failed))
        rows.append([
            "web-" + test,
            fmt(get(w, "rps"), ",.0f"),
            fmt(get(s, "rps"), ",.0f"),
            fmt(get(t, "rps"), ",.0f"),
            fmt(vs_raw, ".2f"),
            fmt(vs_tornado, ".1f"),
            fmt_us(get(w, "p99_us")),
            fmt(get(w, "cpu_us"), ".2f"),
            verdict,
        ])
    return rows


WEB_HEADER = ["test", "web req/s", "squall req/s", "tornado req/s", "web/squall", "web/tornado",
              "p99 web", "CPU us/req web", "target met"]


HEADER = ["test", "squall req/s", "nginx req/s", "tornado req/s", "squall/nginx",
          "squall/tornado", "p99 squall", "p99 nginx", "CPU us/req squall",
          "CPU us/req nginx", "target met"]


def format_table(header, rows):
    """A Markdown table with padded columns; figures right-aligned."""
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]

    def line(cells, right):
        padded = [c.rjust(widths[i]) if right and 0 < i < len(cells) - 1 else c.ljust(widths[i])
                  for i, c in enumerate(cells)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header, False), rule, *(line(r, True) for r in rows)])


def notes(runs, wrk, problems):
    lines = []
    merged = {}
    for run in runs:
        merged.update(run)
    for run in [merged] if merged else []:
        load = run.get("load_start")
        cpus = run.get("cpus")
        if load is not None and cpus:
            busy = " (busy: expect noise)" if load > 0.5 * cpus else ""
            end = f", {run['load_end']:.2f} at the end" if run.get("load_end") is not None else ""
            lines.append(f"machine: {cpus} CPUs, load average {load:.2f} at the start{end}{busy}")
        opts = run.get("options")
        if opts:
            lines.append("run: " + ", ".join(f"{k} {v}" for k, v in opts.items()))
    figs = medians(wrk)
    noisy = [f"{server}/{test} {fig['cv']:.0%}" for (server, test), fig in sorted(figs.items())
             if fig["cv"] > NOISY_CV]
    if noisy:
        lines.append(f"req/s spread over {NOISY_CV:.0%} between rounds: " + ", ".join(noisy))
    # How busy each server was: well under one core means something else
    # (wrk, or the machine's other load) limited its req/s.
    use = {}
    for row in wrk:
        if row.get("cpu_use") is not None:
            use.setdefault(row["server"], []).append(row["cpu_use"])
    if use:
        lines.append("server CPU use during the runs, median (100% = one core): "
                     + ", ".join(f"{server} {statistics.median(use[server]):.0%}"
                                 for server in ALL_SERVERS if server in use)
                     + "; well under 100%, req/s was limited by the client or the machine's load,"
                       " and CPU us/req is the figure to compare")
    # Errors wrk saw, summed over rounds.
    errors = {}
    for row in wrk:
        key = (row["server"], row["test"])
        e = errors.setdefault(key, {"non-2xx": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0})
        e["non-2xx"] += row.get("non_2xx", 0)
        for kind, count in row.get("socket_errors", {}).items():
            e[kind] += count
    for (server, test), e in sorted(errors.items()):
        bad = {k: v for k, v in e.items() if v}
        if bad:
            lines.append(f"wrk errors, {server} {test}: " + ", ".join(f"{k} {v}" for k, v in bad.items()))
    for p in problems:
        lines.append(f"problem: {p}")
    return lines


def cmd_table(args):
    try:
        runs, wrk, problems = load_results(args.results)
    except (OSError, ValueError) as e:
        print(f"http_compare_report.py: cannot read {args.results}: {e}", file=sys.stderr)
        return 2
    print(format_table(HEADER, table_rows(wrk)))
    web = web_rows(wrk)
    if web:
        print()
        print(format_table(WEB_HEADER, web))
    lines = notes(runs, wrk, problems)
    if lines:
        print()
        print("\n".join(lines))
    return 0


def append(path, obj):
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj) + "\n")


def cmd_record(args):
    with open(args.wrk_output, encoding="utf-8", errors="replace") as f:
        text = f.read()
    try:
        fig = parse_wrk(text)
    except ValueError as e:
        append(args.results, {"problem": f"{args.server} {args.test} round {args.round}: "
                                         f"unreadable wrk output ({e})"})
        print(f"http_compare_report.py: {args.wrk_output}: {e}", file=sys.stderr)
        return 1
    cpu = (args.cpu_ticks_after - args.cpu_ticks_before) / os.sysconf("SC_CLK_TCK")
    fig["cpu_us"] = cpu * 1e6 / fig["requests"] if fig["requests"] else None
    fig["cpu_use"] = cpu / fig["seconds"] if fig["seconds"] else None
    fig.update(server=args.server, test=args.test, round=args.round)
    append(args.results, {"wrk": fig})
    errs = sum(fig["socket_errors"].values())
    print(f"  {args.server:8} {args.test:22} {fig['rps']:>12,.0f} req/s  p99 {fmt_us(fig['p99_us']):>8}"
          f"  CPU {fmt(fig['cpu_us'], '.2f')} us/req"
          + (f"  non-2xx {fig['non_2xx']}" if fig["non_2xx"] else "")
          + (f"  socket errors {errs}" if errs else ""), file=sys.stderr)
    return 0


def cmd_check(args):
    problems = check_server(args.port)
    for p in problems:
        print(p)
    return 0


def cmd_run_info(args):
    """Appends the {"run": ...} line: CPUs, load average, options."""
    load = os.getloadavg()[0]
    if args.update_end:
        append(args.results, {"run": {"load_end": load}})
        return 0
    opts = dict(kv.split("=", 1) for kv in args.option)
    append(args.results, {"run": {"cpus": os.cpu_count(), "load_start": load, "options": opts}})
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("table", help="print the table from RESULTS.jsonl")
    p.add_argument("results")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("record", help="append one wrk run to RESULTS.jsonl")
    p.add_argument("--results", required=True)
    p.add_argument("--wrk-output", required=True)
    p.add_argument("--server", required=True, choices=ALL_SERVERS)
    p.add_argument("--test", required=True)
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--cpu-ticks-before", type=int, required=True,
                   help="the server's utime+stime in clock ticks before the run")
    p.add_argument("--cpu-ticks-after", type=int, required=True)
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("run-info", help="append the run's description to RESULTS.jsonl")
    p.add_argument("--results", required=True)
    p.add_argument("--update-end", action="store_true")
    p.add_argument("option", nargs="*", help="NAME=VALUE")
    p.set_defaults(func=cmd_run_info)

    p = sub.add_parser("problem", help="append a problem to RESULTS.jsonl")
    p.add_argument("--results", required=True)
    p.add_argument("text")
    p.set_defaults(func=lambda a: append(a.results, {"problem": a.text}) or 0)

    p = sub.add_parser("check", help="check a server's answers on 127.0.0.1:PORT")
    p.add_argument("port", type=int)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("children", help="pids whose parent is PID")
    p.add_argument("pid", type=int)
    p.set_defaults(func=lambda a: print("\n".join(map(str, children(a.pid)))) or 0)

    p = sub.add_parser("free-port", help="a free port on 127.0.0.1")
    p.set_defaults(func=lambda a: print(free_port()) or 0)

    p = sub.add_parser("wait-port", help="wait until 127.0.0.1:PORT accepts")
    p.add_argument("port", type=int)
    p.add_argument("--pid", type=int, help="give up if this process exits")
    p.add_argument("--timeout", type=float, default=15)
    p.set_defaults(func=lambda a: 0 if wait_port(a.port, a.pid, a.timeout) else 1)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
