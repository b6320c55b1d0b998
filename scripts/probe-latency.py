#!/usr/bin/env python3
"""Other clients' view of a long request: CLIENTS connections each send
COMMAND (default UNWATCH, which the proxy answers itself) one at a time,
a millisecond apart, for SECONDS, and the worst and 99th-percentile wait
of each is printed. Run it against a proxy while a long request (KEYS over
a million keys, a cross-slot SUNION of a million members) runs there.

    scripts/probe-latency.py PORT SECONDS [COMMAND] [CLIENTS]
"""
import socket
import sys
import threading
import time


def probe(port, command, stop, results):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    waits = []
    while not stop.is_set():
        start = time.perf_counter()
        sock.sendall(command + b"\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += sock.recv(4096)
        waits.append(time.perf_counter() - start)
        time.sleep(0.001)
    waits.sort()
    results.append((waits[-1] * 1000, waits[int(len(waits) * 0.99)] * 1000, len(waits)))


def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    command = (sys.argv[3] if len(sys.argv) > 3 else "UNWATCH").encode()
    clients = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    stop, results = threading.Event(), []
    threads = [threading.Thread(target=probe, args=(port, command, stop, results)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    print("worst ms:", [round(r[0], 1) for r in results],
          "p99 ms:", [round(r[1], 1) for r in results],
          "requests:", sum(r[2] for r in results))


if __name__ == "__main__":
    main()
