#!/usr/bin/env python3
"""Clients that ask for much and never read, against a proxy on
127.0.0.1:PORT whose process id is PID: a 4 MiB value is stored, then
READERS clients each pipeline GETS GETs of it and never read a byte,
while one more client GETs it every half second and reads it whole. The
proxy's RSS is sampled every 10 ms (by a thread of its own) for SECONDS,
then the slow readers close and RSS is sampled again for 10 s. Prints the
peak RSS, what the well-behaved client saw, and RSS at the end, in MiB.

    scripts/slow-readers.py PORT PID [SECONDS] [READERS] [GETS]
"""
import socket
import sys
import threading
import time

VALUE = 4 * 1024 * 1024


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def command(*args):
    out = b"*%d\r\n" % len(args)
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return out


def read_reply(sock):
    """Reads one bulk reply whole; returns its length, or the error line."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return "closed"
        data += chunk
    line, rest = data.split(b"\r\n", 1)
    if not line.startswith(b"$"):
        return line.decode()
    size = int(line[1:])
    while len(rest) < size + 2:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return "closed"
        rest += chunk
    return size


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 20
    readers = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    gets = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
    setter = socket.create_connection(("127.0.0.1", port))
    setter.sendall(command("SET", "slow-readers:big", b"x" * VALUE))
    assert setter.recv(100).startswith(b"+OK"), "SET failed"
    idle_rss = rss_mib(pid)
    hogs = []
    for _ in range(readers):
        hog = socket.create_connection(("127.0.0.1", port))
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hogs.append(hog)
    request = command("GET", "slow-readers:big")

    def flood(hog):
        try:
            for _ in range(gets):
                hog.sendall(request)
        except OSError:
            pass

    for hog in hogs:
        threading.Thread(target=flood, args=(hog,), daemon=True).start()
    peak, sampling = [0.0], [True]

    def sample():
        while sampling[0]:
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    waits, answers = [], []
    start = time.time()
    next_get = start
    while time.time() - start < seconds:
        if time.time() >= next_get:
            began = time.time()
            setter.sendall(request)
            answers.append(read_reply(setter))
            waits.append((time.time() - began) * 1000)
            next_get = began + 0.5
        time.sleep(0.1)
    sampling[0] = False
    sampler.join()
    for hog in hogs:
        hog.close()
    after = []
    for _ in range(100):
        time.sleep(0.1)
        after.append(rss_mib(pid))
    good = sum(1 for a in answers if a == VALUE)
    print(f"RSS idle {idle_rss:.0f} MiB, peak {peak[0]:.0f} MiB, 1 s after {after[9]:.0f} MiB, 10 s after {after[-1]:.0f} MiB")
    print(f"the reading client: {good}/{len(answers)} GETs whole, waits {min(waits):.0f}-{max(waits):.0f} ms; other answers: {set(a for a in answers if a != VALUE)}")


if __name__ == "__main__":
    main()
