"""An idle-connection flood from another process: `count` connections to a port that never send a
byte, each reopened as soon as the server closes it, up to ~1,000 a second (the attacker of the
connection-flood tests).

A process of its own, so that its busy loop does not take the GIL from the test's own client,
which measures how fast the service still answers.
"""

from __future__ import annotations

import subprocess
import sys

FLOODER = """
import selectors, socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
selector = selectors.DefaultSelector()
def open_one():
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    selector.register(sock, selectors.EVENT_READ)
for _ in range(count):
    open_one()
selector.register(sys.stdin, selectors.EVENT_READ)
print("open", flush=True)
reopened = 0
while True:
    # One at a time, a millisecond apart: up to ~1,000 reopens a second, a flood that still
    # leaves a share of the 2-core test machine to the service it measures.
    for key, _ in selector.select()[:1]:
        if key.fileobj is sys.stdin:
            print(reopened, flush=True)
            sys.exit(0)
        selector.unregister(key.fileobj)
        key.fileobj.close()  # readable: closed by the server, which never sends us data
        open_one()
        reopened += 1
    time.sleep(0.001)
"""


class IdleFlood:
    """`with IdleFlood(port, count) as flood:` the flood runs; `flood.reopened` after the block."""

    def __init__(self, port: int, count: int) -> None:
        self._args = [sys.executable, "-c", FLOODER, str(port), str(count)]
        self._proc: subprocess.Popen[str] | None = None
        self.reopened = 0

    def __enter__(self) -> IdleFlood:
        self._proc = subprocess.Popen(
            self._args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        assert self._proc.stdout.readline().strip() == "open", "the flood did not start"
        return self

    def __exit__(self, *_: object) -> None:
        assert self._proc is not None
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write("\n")
        self._proc.stdin.flush()
        self.reopened = int(self._proc.stdout.readline().strip() or 0)
        self._proc.wait(10)
