#!/usr/bin/env python3
"""Opens COUNT connections to a proxy on 127.0.0.1:PORT, sends one PING on
each and reads its reply, then holds them idle for SECONDS and closes
them: for measuring what an idle client costs (the proxy's RSS before,
during and after) and whether it slows the active ones (run
redis-benchmark meanwhile). The proxy's max_clients must allow COUNT.

    scripts/idle-clients.py PORT COUNT SECONDS
"""
import socket
import sys
import time


def main():
    port, count, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    connections = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(b"PING\r\n")
        connections.append(connection)
    for connection in connections:
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += connection.recv(64)
    print(f"{count} idle clients connected", flush=True)
    time.sleep(hold)
    for connection in connections:
        connection.close()
    print("closed", flush=True)


if __name__ == "__main__":
    main()
