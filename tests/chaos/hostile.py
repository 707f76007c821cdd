# SPDX-License-Identifier: MIT
"""Chaos harness, part 4: hostile clients against a live cluster.

Design notes
------------
- Each malformed request is sent on its own connection; the verdict is what came back
  within 5 s: an error reply (`PARSE_ERROR`, `ERROR`, `-ERR`), the connection closed, or
  nothing (only acceptable for a request that is merely incomplete and left open).
- Pipelining: 100,000 requests written without reading a single reply. The server stops
  reading that connection once its output buffer is over budget, so the client's writes
  block; the harness writes with a deadline, holds the connection, then closes it unread.
- Idle connections: thousands of connections that never send a byte (and some that send
  half a request), held while the load runs, then closed.
- Memory: each node's VmRSS from /proc before the attack, its peak (sampled every 100 ms
  by a thread) and after everything was closed.
"""
import random
import socket
import threading
import time

from cluster import CLIENT_PORT

ERROR_PREFIXES = (b"PARSE_ERROR", b"ERROR", b"-ERR")


def _verdict(sock, timeout=5.0):
    """'error: <line>', 'closed', or 'silent'."""
    sock.settimeout(timeout)
    buf = b""
    try:
        while b"\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                return "closed" if not buf else f"closed after {buf[:60]!r}"
            buf += chunk
    except socket.timeout:
        return "silent"
    except OSError:
        return "closed"
    line = buf.split(b"\n", 1)[0].rstrip(b"\r")
    if line.startswith(ERROR_PREFIXES):
        return "error: " + line[:80].decode(errors="replace")
    return "reply: " + line[:80].decode(errors="replace")


def _send(ip, payload, close_write=False):
    s = socket.create_connection((ip, CLIENT_PORT), timeout=5.0)
    try:
        s.sendall(payload)
    except OSError:
        pass  # the server may close on the first bad bytes: that is a valid answer
    if close_write:
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    return s


def malformed_cases(rng):
    """(name, payload, what is acceptable) for every malformed request."""
    garbage = bytes(rng.getrandbits(8) for _ in range(65536))
    return [
        ("oversized line (2 MiB, no newline)", b"SET k " + b"a" * (2 << 20), "error|closed"),
        ("oversized RESP bulk length", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\n",
         "error|closed"),
        ("oversized RESP value (1.5 MiB)", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1572864\r\n" +
         b"v" * 1572864 + b"\r\n", "error|closed"),
        ("RESP array of 100000 elements", b"*100000\r\n", "error|closed"),
        ("RESP negative array", b"*-5\r\n", "error|closed"),
        ("RESP bad array header", b"*abc\r\n", "error|closed"),
        ("RESP bulk without CRLF", b"*2\r\n$3\r\nGET\r\n$1\r\nkXX", "error|closed"),
        ("RESP non-bulk element", b"*1\r\n:5\r\n", "error|closed"),
        ("unknown command", b"FROBNICATE x y\n", "error"),
        ("SET without value", b"SET onlykey\n", "error"),
        ("NUL bytes", b"\x00\x00\x00\x00\n", "error|closed"),
        ("high bytes", b"\xff\xfe\xfd\xfc SET\n", "error|closed"),
        ("64 KiB of random bytes", garbage + b"\n", "error|closed"),
        ("REMOVE of a non-number", b"REMOVE abc\n", "error"),
        ("JOIN with garbage", b"JOIN 0 \x01\x02\n", "error"),
        ("truncated line, then EOF", b"SET half", "closed|silent-ok"),
        ("truncated RESP, then EOF", b"*3\r\n$3\r\nSET\r\n$1", "closed|silent-ok"),
    ]


def run_malformed(nodes, rng, log):
    """Every malformed case against every node; returns a list of failures."""
    failures = []
    for name, payload, accept in malformed_cases(rng):
        for node in nodes:
            eof = accept.startswith("closed|silent")
            s = _send(node.ip, payload, close_write=eof)
            v = _verdict(s)
            s.close()
            kind = v.split(":")[0].split(" ")[0]
            ok = kind in accept.split("|") or (kind == "silent" and "silent-ok" in accept)
            if not ok:
                failures.append(f"n{node.id} {name}: {v}")
        log(f"hostile: {name}: {v}")
    return failures


def pipeline_unread(node, count, line, hold_s=2.0, deadline_s=20.0):
    """Write `count` requests without reading; returns (bytes written, seconds)."""
    payload = (line + "\n").encode() * count
    s = socket.create_connection((node.ip, CLIENT_PORT), timeout=5.0)
    s.setblocking(False)
    sent, start = 0, time.monotonic()
    while sent < len(payload) and time.monotonic() - start < deadline_s:
        try:
            sent += s.send(payload[sent:sent + 262144])
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:
            break
    elapsed = time.monotonic() - start
    time.sleep(hold_s)
    s.close()
    return sent, len(payload), elapsed


def open_idle(nodes, per_node, half_fraction=0.1):
    """per_node idle connections to each node (a tenth of them with half a request)."""
    socks = []
    for node in nodes:
        for i in range(per_node):
            s = socket.create_connection((node.ip, CLIENT_PORT), timeout=10.0)
            if i < per_node * half_fraction:
                s.sendall(b"SET idle" if i % 2 else b"*2\r\n$3\r\nGET\r\n")
            socks.append(s)
    return socks


class RssSampler(threading.Thread):
    def __init__(self, nodes, period=0.1):
        super().__init__(daemon=True)
        self.nodes = nodes
        self.period = period
        self.peak = {n.id: n.rss_kib() for n in nodes}
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            for n in self.nodes:
                self.peak[n.id] = max(self.peak[n.id], n.rss_kib())
            time.sleep(self.period)

    def reset(self):
        self.peak = {n.id: n.rss_kib() for n in self.nodes}

    def stop(self):
        self.stop_flag.set()
        self.join()


BIG_KEY = "hostile-big"


def attack(nodes, leader, rng, log, idle_per_node):
    """One round of the hostile phase; returns (failures, figures)."""
    figures = {}
    failures = run_malformed(nodes, rng, log)
    socks = open_idle(nodes, idle_per_node)
    log(f"hostile: {len(socks)} idle connections open")
    figures["idle_connections"] = len(socks)
    threads, results = [], {}

    def pipe(node, line, key):
        results[key] = pipeline_unread(node, 100000, line)
    followers = [n for n in nodes if n.id != leader.id]
    # GET of a 4 KiB value: 100,000 replies are 400 MB, far over the server's output budget.
    for node, line, key in [(leader, f"GET {BIG_KEY}", "leader GET (4 KiB value)"),
                            (followers[0], "PING", "follower PING"),
                            (followers[-1], "*1\r\n$4\r\nPING\r", "follower RESP PING")]:
        t = threading.Thread(target=pipe, args=(node, line, key))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    for key, (sent, total, secs) in results.items():
        log(f"hostile: 100000 pipelined {key}: {sent}/{total} bytes written in {secs:.1f}s, "
            "no reply read, connection held 2 s then closed")
    figures["pipelined"] = {k: {"bytes_written": v[0], "bytes_total": v[1]}
                            for k, v in results.items()}
    time.sleep(1.0)
    for s in socks:
        s.close()
    log("hostile: idle connections closed")
    return failures, figures
