#!/usr/bin/python3
# A uvloop echo server for bench/compare.sh (Debian's python3-uvloop): the fast end of Python.
# Usage: uvloop-echo.py PORT  (binds 127.0.0.1; prints "listening on 127.0.0.1:PORT" when ready)
import asyncio
import sys

import uvloop


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port, backlog=4096)
    print("listening on 127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


uvloop.install()
asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
