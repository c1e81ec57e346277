#!/usr/bin/python3
"""Tornado's client for bench/http_client: GETs per second of Tornado's
AsyncHTTPClient (simple_httpclient, the default) against one URL, measured
the way bench/http_client.cpp measures squall's client.

    /usr/bin/python3 bench/http_client_tornado.py --url URL --concurrency 64 --duration 5

--concurrency 1 is one request at a time on one keep-alive connection
(Tornado 6.2's simple client opens a new connection per request: that is
what it costs); --concurrency N runs N coroutines that fetch back to back,
with max_clients=N. Prints one JSON line like bench/http_client.cpp's.
Run it with Debian's interpreter and python3-tornado (6.2).
"""

import argparse
import asyncio
import json
import sys
import time

from tornado.httpclient import AsyncHTTPClient


async def worker(client, url, until, counters, expected):
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        try:
            response = await client.fetch(url, decompress_response=False)
            if len(response.body) != expected:
                raise RuntimeError("unexpected body %r" % response.body)
            counters["requests"] += 1
        except Exception as e:  # noqa: BLE001 - counted and reported
            if counters["errors"] == 0:
                counters["first_error"] = repr(e)
            counters["errors"] += 1


async def phase(client, url, concurrency, seconds, counters, expected):
    until = asyncio.get_running_loop().time() + seconds
    await asyncio.gather(*(worker(client, url, until, counters, expected) for _ in range(concurrency)))


async def main(args):
    client = AsyncHTTPClient(force_instance=True, max_clients=args.concurrency)
    first = await client.fetch(args.url, decompress_response=False)
    expected = len(first.body)
    warm = {"requests": 0, "errors": 0}
    if args.warmup > 0:
        await phase(client, args.url, args.concurrency, args.warmup, warm, expected)
    counted = {"requests": 0, "errors": 0}
    start = time.monotonic()
    await phase(client, args.url, args.concurrency, args.duration, counted, expected)
    elapsed = time.monotonic() - start
    client.close()
    errors = counted["errors"] + warm["errors"]
    print(json.dumps({"backend": "tornado", "concurrency": args.concurrency, "requests": counted["requests"],
                      "seconds": round(elapsed, 3), "rps": round(counted["requests"] / elapsed, 1),
                      "errors": errors}), flush=True)
    if errors:
        first_error = counted.get("first_error") or warm.get("first_error")
        print("http_client_tornado: %d fetches failed; the first: %s" % (errors, first_error), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    sys.exit(asyncio.run(main(parser.parse_args())))
