#!/usr/bin/env python3
"""Opens N silent TCP connections (no TLS handshake) to a local coordinator, holds them for a
bounded time, and prints the coordinator's resident memory and open file descriptors each second
and how many of the connections it has closed. Loopback only; stops by itself.

    Scripts/measure-idle-connections.py --pid PID --port PORT [--connections 1000] [--seconds 20]
"""
import argparse
import socket
import time


def resident_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def open_fds(pid):
    import os
    return len(os.listdir(f"/proc/{pid}/fd"))


def closed_by_peer(sock):
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "::1"])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument(
        "--source-addresses", type=int, default=1,
        help="spread the connections over 127.0.0.2 .. 127.0.0.(N+1) (IPv4 only)")
    args = parser.parse_args()
    assert args.connections <= 5000 and args.seconds <= 300, "bounded by design"
    assert 1 <= args.source_addresses <= 250

    base_rss, base_fds = resident_kb(args.pid), open_fds(args.pid)
    print(f"before: rss_kb={base_rss} fds={base_fds}")
    sockets, failed = [], 0
    for index in range(args.connections):
        source = None
        if args.source_addresses > 1:
            source = (f"127.0.0.{2 + index % args.source_addresses}", 0)
        try:
            connection = socket.create_connection((args.host, args.port), timeout=2, source_address=source)
            connection.setblocking(False)
            sockets.append(connection)
        except OSError:
            failed += 1
    print(f"opened {len(sockets)} connections ({failed} failed to connect)")
    peak_rss, peak_fds = base_rss, base_fds
    for second in range(1, args.seconds + 1):
        time.sleep(1)
        rss, fds = resident_kb(args.pid), open_fds(args.pid)
        peak_rss, peak_fds = max(peak_rss, rss), max(peak_fds, fds)
        closed = sum(closed_by_peer(s) for s in sockets)
        print(f"t={second:3d}s rss_kb={rss} fds={fds} closed_by_coordinator={closed}")
    for s in sockets:
        s.close()
    time.sleep(2)
    print(
        f"summary: connections={len(sockets)} peak_rss_growth_kb={peak_rss - base_rss} "
        f"peak_fd_growth={peak_fds - base_fds} rss_kb_after_close={resident_kb(args.pid)} "
        f"fds_after_close={open_fds(args.pid)}"
    )


if __name__ == "__main__":
    main()
