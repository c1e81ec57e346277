"""Tornado side of the WebSocket benchmark (bench/websocket): /echo sends
every message back with its type, /chat sends every message to every
member (Tornado's chat demo). No compression (Tornado's default).

Usage: tornado_websocket.py LISTEN_FD   (serves the listening socket the
parent made and inherited; exits when stdin reaches EOF, i.e. when the
parent closes its control pipe).
"""
import asyncio
import os
import socket
import sys

import tornado.httpserver
import tornado.web
import tornado.websocket


class EchoHandler(tornado.websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))


class ChatHandler(tornado.websocket.WebSocketHandler):
    members = set()

    def open(self):
        ChatHandler.members.add(self)

    def on_close(self):
        ChatHandler.members.discard(self)

    def on_message(self, message):
        binary = isinstance(message, bytes)
        for member in list(ChatHandler.members):
            try:
                member.write_message(message, binary=binary)
            except tornado.websocket.WebSocketClosedError:
                pass


async def main():
    sock = socket.socket(fileno=int(sys.argv[1]))
    sock.setblocking(False)
    app = tornado.web.Application([("/echo", EchoHandler), ("/chat", ChatHandler)])
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(0, done.set)
    await done.wait()
    os._exit(0)


asyncio.run(main())
