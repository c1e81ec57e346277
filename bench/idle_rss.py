#!/usr/bin/env python3
"""Memory per idle keep-alive connection of an HTTP server (bench/idle_rss).

    idle_rss.py hold --port P --pids PID[,PID...] [--connections 10000]
    idle_rss.py table RESULTS.jsonl

`hold` reads the server's VmRSS (summed over PIDS, e.g. nginx's master and
worker), then opens CONNECTIONS keep-alive connections to 127.0.0.1:P, each
sending one `GET /plaintext` and reading the whole response, and leaves them
idle. When all are idle it waits --settle seconds, reads VmRSS again and
checks that the server still holds every connection (a peek on each socket:
no data and no end-of-file). It prints one JSON object:

    {"connections": held, "rss_before_kib", "rss_after_kib",
     "kib_per_connection": (after - before) / held, "closed_by_server", ...}

and appends it to --results when given. It raises its RLIMIT_NOFILE soft
limit to the hard limit; when that is still too low for CONNECTIONS, the
connections are spread over several client processes. At most --in-flight
connections are connecting or waiting for their response at a time, so the
server's accept backlog is never flooded. Everything is bounded by
--timeout seconds: connections not idle by then are left out and reported.

`table` prints server | held | RSS before | RSS after | KiB/connection |
target from the JSON lines. Standard library only.
"""

import argparse
import errno
import json
import os
import resource
import select
import socket
import sys
import time

# KiB per idle connection that squall must stay under (DESIGN.md).
SQUALL_TARGET_KIB = 1.0
# What the peers cost on the development machines, for the reader.
REFERENCE_KIB = {"nginx": 0.5, "tornado": 8.4}
MISSING = "-"


def rss_kib(pids):
    """Sum of VmRSS over pids, in KiB (a pid that is gone counts zero)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def open_fds(pids):
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return total


def response_complete(buf):
    """True when buf holds one whole HTTP response."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = buf[:end].decode("latin-1").lower()
    body = len(buf) - end - 4
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        name = name.strip()
        if name == "content-length":
            return body >= int(value)
        if name == "transfer-encoding" and "chunked" in value:
            return buf.endswith(b"0\r\n\r\n")
    return True  # no body framing: a bodiless response


REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def hold(port, count, in_flight, deadline):
    """Opens count connections, each with one request and response; returns
    (idle sockets, {error: count})."""
    ep = select.epoll()
    pending = {}   # fd -> [socket, state, buffer]; state "connect" or "read"
    idle = []
    errors = {}
    started = 0

    def fail(fd, what):
        sock = pending.pop(fd)[0]
        ep.unregister(fd)
        sock.close()
        errors[what] = errors.get(what, 0) + 1

    while (started < count or pending) and time.monotonic() < deadline:
        while started < count and len(pending) < in_flight:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            started += 1
            err = sock.connect_ex(("127.0.0.1", port))
            if err not in (0, errno.EINPROGRESS):
                sock.close()
                name = errno.errorcode.get(err, str(err))
                errors[name] = errors.get(name, 0) + 1
                continue
            pending[sock.fileno()] = [sock, "connect", b""]
            ep.register(sock.fileno(), select.EPOLLOUT)
        for fd, events in ep.poll(min(1.0, max(0.0, deadline - time.monotonic()))):
            entry = pending.get(fd)
            if entry is None:
                continue
            sock, state, buf = entry
            if state == "connect":
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(fd, errno.errorcode.get(err, str(err)))
                    continue
                try:
                    sent = sock.send(REQUEST)
                except OSError as e:
                    fail(fd, type(e).__name__)
                    continue
                if sent != len(REQUEST):  # never for 45 bytes on a new socket
                    fail(fd, "short write")
                    continue
                entry[1] = "read"
                ep.modify(fd, select.EPOLLIN)
                continue
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                fail(fd, type(e).__name__)
                continue
            if not chunk:
                fail(fd, "closed before the response")
                continue
            entry[2] = buf = buf + chunk
            if response_complete(buf):
                if not buf.startswith(b"HTTP/1.1 200"):
                    errors["non-200"] = errors.get("non-200", 0) + 1
                ep.unregister(fd)
                del pending[fd]
                idle.append(sock)
    for fd in list(pending):
        fail(fd, "not idle before the timeout")
    errors["never started"] = count - started
    if not errors["never started"]:
        del errors["never started"]
    ep.close()
    return idle, errors


def still_open(socks):
    """(open, closed by the server, with unexpected data)."""
    alive = closed = extra = 0
    for sock in socks:
        try:
            data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            alive += 1
            continue
        except OSError:
            closed += 1
            continue
        if data:
            extra += 1
        else:
            closed += 1
    return alive, closed, extra


def child(port, count, in_flight, deadline, to_parent, from_parent):
    """One client process: hold count connections, report, wait for the
    parent's word, check them, report, close."""
    idle, errors = hold(port, count, in_flight, deadline)
    os.write(to_parent, (json.dumps({"idle": len(idle), "errors": errors}) + "\n").encode())
    # Wait for the parent to have read the server's RSS (or to be gone).
    os.read(from_parent, 1)
    alive, closed, extra = still_open(idle)
    os.write(to_parent, (json.dumps({"alive": alive, "closed": closed, "extra": extra}) + "\n").encode())
    for sock in idle:
        sock.close()


def read_line(fd, deadline):
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


def cmd_hold(args):
    pids = [int(p) for p in args.pids.split(",") if p]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    per_process = max(1, min(args.connections, hard - 64))
    shares = []
    left = args.connections
    while left > 0:
        shares.append(min(per_process, left))
        left -= shares[-1]

    # Warm-up: one request, so lazily built state is not counted per connection.
    w = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    w.sendall(REQUEST)
    buf = b""
    while not response_complete(buf):
        chunk = w.recv(65536)
        if not chunk:
            break
        buf += chunk
    w.close()
    time.sleep(args.settle)
    before = rss_kib(pids)
    fds_before = open_fds(pids)

    start = time.monotonic()
    deadline = start + args.timeout
    children = []
    for share in shares:
        up_r, up_w = os.pipe()
        down_r, down_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(up_r)
            os.close(down_w)
            try:
                child(args.port, share, max(1, args.in_flight // len(shares)), deadline, up_w, down_r)
            finally:
                os._exit(0)
        os.close(up_w)
        os.close(down_r)
        children.append((pid, up_r, down_w))

    held = 0
    errors = {}
    for _, up_r, _ in children:
        report = read_line(up_r, deadline + 30) or {"idle": 0, "errors": {"client process lost": 1}}
        held += report["idle"]
        for k, v in report["errors"].items():
            errors[k] = errors.get(k, 0) + v
    open_seconds = time.monotonic() - start
    time.sleep(args.settle)
    after = rss_kib(pids)
    fds_after = open_fds(pids)

    alive = closed = extra = 0
    for _, up_r, down_w in children:
        os.write(down_w, b"x")
        report = read_line(up_r, time.monotonic() + 60) or {}
        alive += report.get("alive", 0)
        closed += report.get("closed", 0)
        extra += report.get("extra", 0)
    for pid, up_r, down_w in children:
        os.close(up_r)
        os.close(down_w)
        os.waitpid(pid, 0)

    result = {
        "server": args.server,
        "requested": args.connections,
        "connections": held,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": (after - before) / held if held else None,
        "server_fds_before": fds_before,
        "server_fds_after": fds_after,
        "still_open": alive,
        "closed_by_server": closed,
        "unexpected_data": extra,
        "errors": errors,
        "client_processes": len(children),
        "open_seconds": round(open_seconds, 2),
        "load_average": os.getloadavg()[0],
    }
    line = json.dumps(result)
    print(line)
    if args.results:
        with open(args.results, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    return 0 if held else 1


def format_table(header, rows):
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells, right):
        return "| " + " | ".join(c.rjust(widths[i]) if right and 0 < i < len(cells) - 1
                                 else c.ljust(widths[i]) for i, c in enumerate(cells)) + " |"

    return "\n".join([line(header, False), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r, True) for r in rows)])


def cmd_table(args):
    results = []
    with open(args.results, encoding="utf-8") as f:
        for text in f:
            if text.strip():
                results.append(json.loads(text))
    header = ["server", "connections held", "RSS before KiB", "RSS after KiB",
              "KiB/connection", "target"]
    rows = []
    notes = []
    for r in results:
        per = r.get("kib_per_connection")
        if r["server"] == "squall":
            target = (f"<= {SQUALL_TARGET_KIB:g} KiB: " + ("yes" if per <= SQUALL_TARGET_KIB else "no")
                      if per is not None else MISSING)
        else:
            target = f"(reference {REFERENCE_KIB[r['server']]:g} KiB)" if r["server"] in REFERENCE_KIB else ""
        rows.append([r["server"], f"{r['connections']:,}/{r['requested']:,}",
                     f"{r['rss_before_kib']:,}", f"{r['rss_after_kib']:,}",
                     MISSING if per is None else f"{per:.2f}", target])
        if r["errors"]:
            notes.append(f"{r['server']}: connections lost: "
                         + ", ".join(f"{k} {v}" for k, v in sorted(r["errors"].items())))
        if r["closed_by_server"] or r["unexpected_data"]:
            notes.append(f"{r['server']}: after the measurement, {r['closed_by_server']} connections "
                         f"had been closed by the server and {r['unexpected_data']} had unexpected data")
        notes.append(f"{r['server']}: opened in {r['open_seconds']} s, server descriptors "
                     f"{r['server_fds_before']} -> {r['server_fds_after']}, "
                     f"load average {r['load_average']:.2f}")
    for p in args.problem or []:
        notes.append(p)
    print(format_table(header, rows))
    if notes:
        print()
        print("\n".join(notes))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("hold", help="measure one server")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pids", required=True, help="comma-separated server pids")
    p.add_argument("--server", default="server", help="name in the results")
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--in-flight", type=int, default=256,
                   help="connections connecting or awaiting a response at once")
    p.add_argument("--timeout", type=float, default=180, help="seconds to open them all")
    p.add_argument("--settle", type=float, default=2.0,
                   help="seconds idle before each RSS reading")
    p.add_argument("--results", help="append the JSON line to this file")
    p.set_defaults(func=cmd_hold)
    p = sub.add_parser("table", help="print the table from the JSON lines")
    p.add_argument("results")
    p.add_argument("--problem", action="append", help="a line for the note under the table")
    p.set_defaults(func=cmd_table)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
