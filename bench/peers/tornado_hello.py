#!/usr/bin/python3
"""Tornado peer for bench/http_compare and bench/idle_rss.

The same two endpoints as examples/hello.cpp, written the way a Tornado user
writes them, in one process with Tornado's defaults (no debug, no autoreload):

    GET /plaintext -> "Hello, World!"               text/plain
    GET /json      -> {"message": "Hello, World!"}  application/json

Run with Debian's interpreter and Debian's python3-tornado (6.2), which
scripts/setup-deps installs:

    /usr/bin/python3 bench/peers/tornado_hello.py --port 8888

Access logging is off, as it is for nginx in the same comparison.
"""

import argparse
import resource
import signal

import tornado.httpserver
import tornado.ioloop
import tornado.web


class PlaintextHandler(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.write("Hello, World!")


class JsonHandler(tornado.web.RequestHandler):
    def get(self):
        # write(dict) encodes JSON and sets application/json; charset=UTF-8.
        self.write({"message": "Hello, World!"})


def no_access_log(handler):
    pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args()

    # bench/idle_rss holds 10,000 connections open: one descriptor each.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    app = tornado.web.Application(
        [(r"/plaintext", PlaintextHandler), (r"/json", JsonHandler)],
        log_function=no_access_log,
    )
    server = tornado.httpserver.HTTPServer(app)
    server.listen(args.port, address=args.address)

    loop = tornado.ioloop.IOLoop.current()

    def stop(signum, frame):
        loop.add_callback_from_signal(loop.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.start()
    server.stop()


if __name__ == "__main__":
    main()
