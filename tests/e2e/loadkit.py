"""Clients, units and process measurements shared by the flood, fault and soak suites.

The service under load is tests/helpers/slow_auth: a login that waits for the client's first
line, "authenticates" for a while, then sends READY=1 from its main process and answers
"ready". A client that connects and leaves ends it before readiness (usherd penalises its
source: noauth); one that sends nothing keeps it starting until the startup timeout.

Standard library only; run with Debian's /usr/bin/python3.
"""

import os
import socket
import struct
import threading
import time

import harness
from harness import check

SLOW_AUTH = os.path.join(harness.build_dir(), "tests", "helpers", "slow_auth")
CLIENT_TIMEOUT_S = 20.0


def slow_auth_units(name="login", delay_ms=100, socket_extra="", service_extra=""):
    """A socket NAME.socket on 127.0.0.1 and its slow-auth service template."""
    return {
        f"{name}.socket": f"[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n{socket_extra}",
        f"{name}@.service": f"[Service]\nType=notify\nExecStart={SLOW_AUTH} {delay_ms}\n"
                            f"StandardInput=socket\nStandardError=null\n{service_extra}",
    }


def connect(port, source="127.0.0.1", timeout=CLIENT_TIMEOUT_S):
    """A TCP connection to 127.0.0.1:port from the loopback address source."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
    except BaseException:
        s.close()
        raise
    return s


def read_until_closed(s, limit=1 << 16):
    """Everything the peer sends until EOF (a reset counts as EOF)."""
    data = b""
    try:
        while len(data) < limit:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionError:
        pass
    return data


def login(port, source="127.0.0.1"):
    """A full slow-auth login: banner, wait for "ready", leave. True when served.

    usherd either serves the connection (the instance answers "ready") or drops it (EOF or
    reset without a word); every connection ends in exactly one of the two events.
    """
    try:
        with connect(port, source) as s:
            s.sendall(b"hello\n")
            return read_line(s) == b"ready\n"
    except ConnectionError:
        return False


def read_line(s):
    """Bytes up to and including the first newline, or up to EOF."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(64)
        if not chunk:
            break
        data += chunk
    return data


def hit_and_leave(port, source, reset=False):
    """Connects and leaves at once: a FIN, or with reset an RST (SO_LINGER 0)."""
    s = connect(port, source)
    if reset:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


class Clients:
    """Runs fn(i) for i in range(count) on a few threads; collects results and errors."""

    def __init__(self, fn, count, threads=4):
        self.fn, self.count, self.results, self.errors = fn, count, [], []
        self._next = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(threads)]

    def _work(self):
        while True:
            with self._lock:
                i = self._next
                if i >= self.count:
                    return
                self._next += 1
            try:
                r = self.fn(i)
            except Exception as e:  # noqa: BLE001 - reported by join()
                with self._lock:
                    self.errors.append(f"{i}: {type(e).__name__}: {e}")
                continue
            with self._lock:
                self.results.append(r)

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def done(self):
        return not any(t.is_alive() for t in self._threads)

    def join(self, timeout=120.0):
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        check(self.done(), f"clients did not finish within {timeout}s")
        check(not self.errors, f"{len(self.errors)} client errors, first: {self.errors[:3]}")
        return self.results


class Steady:
    """Logins from one source, one after the other, until stop(): the "modest rate" of the
    other sources during a flood. served/attempted are counted."""

    def __init__(self, port, source, minimum=20):
        self.port, self.source, self.minimum = port, source, minimum
        self.served = self.attempted = 0
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not (self._stop.is_set() and self.attempted >= self.minimum):
            try:
                ok = login(self.port, self.source)
            except OSError as e:
                self.errors.append(f"{type(e).__name__}: {e}")
                ok = False
            self.attempted += 1
            self.served += ok

    def start(self):
        self._thread.start()
        return self

    def stop(self, timeout=120.0):
        self._stop.set()
        self._thread.join(timeout)
        check(not self._thread.is_alive(), f"logins from {self.source} did not finish")
        return self

    def ratio(self):
        return self.served / max(self.attempted, 1)


def wait_until(predicate, timeout, what, interval=0.05):
    """Polls predicate() until it returns a true value (returned), or fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        check(time.monotonic() < deadline, f"{what}: not reached within {timeout}s")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------
# Process measurements


def _control_connection_inodes():
    """Inodes of accepted connections on a control socket (path ending in /control).

    usherd closes a control connection when the client's end closes, a moment after usherctl
    returns; such a connection is the measurement's own, not a leak.
    """
    inodes = set()
    with open("/proc/net/unix", encoding="utf-8") as f:
        next(f)
        for line in f:
            fields = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]; St 03 = connected.
            if len(fields) >= 8 and fields[5] == "03" and fields[7].endswith("/control"):
                inodes.add(int(fields[6]))
    return inodes


def fd_count(pid):
    """usherd's open fds, not counting control connections still open from a status call."""
    transient = _control_connection_inodes()
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:[") and int(link[8:-1]) in transient:
            continue
        count += 1
    return count


def _stat_fields(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        text = f.read().decode("utf-8", "replace")
    # Fields after the command (which may hold spaces and parentheses): state is field 3.
    return text[text.rfind(")") + 2:].split()


def cpu_seconds(pid):
    """utime + stime of pid, in seconds."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def zombies(pid):
    """Pids of pid's children that are zombies."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = _stat_fields(int(name))
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            out.append(int(name))
    return out


def quiescent(usherd, socket_names):
    """Asserts the daemon is back at rest: no startups, no instances, per socket and globally.

    Returns the status it read.
    """
    status = None
    for name in socket_names:
        status = usherd.wait_instances_gone(name, timeout=60)
    check(status["startups"]["current"] == 0,
          f"startups after the load: {status['startups']}")
    for s in status["sockets"]:
        check(s["startups"] == 0 and s["instances"] == 0,
              f"{s['name']}: startups {s['startups']}, instances {s['instances']} after the load")
    return status


# ---------------------------------------------------------------------------------------
# The loop's liveness


def control_request(runtime_dir, command="status", timeout=10.0):
    """One control request over RUNTIME/control, as usherctl makes it; the parsed answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(os.path.join(runtime_dir, "control"))
        s.sendall(b'{"version": 1, "command": "%s"}' % command.encode())
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    import json
    return json.loads(b"".join(chunks))


class LoopProbe:
    """Asks usherd for its status over and over from a thread and keeps each answer's time:
    a loop that blocks shows as one long answer."""

    def __init__(self, runtime_dir, interval=0.01):
        self.runtime_dir, self.interval = runtime_dir, interval
        self.times, self.errors = [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                answer = control_request(self.runtime_dir)
                if not answer.get("ok"):
                    self.errors.append(str(answer))
            except (OSError, ValueError) as e:
                self.errors.append(repr(e))
            self.times.append(time.monotonic() - started)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)
        return False

    def worst_ms(self):
        return 1000 * max(self.times) if self.times else float("inf")


def lingering_socket(linger_s=4):
    """A connected loopback TCP pair whose client has unsent data and SO_LINGER {1, linger_s}:
    the last close() of client blocks until server is read or the linger time is over.
    Returns (server, client, listener); keep server unread to keep a close blocked."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.connect(listener.getsockname())
    server, _ = listener.accept()
    client.setblocking(False)
    try:
        while True:
            client.send(b"x" * 4096)
    except BlockingIOError:
        pass
    client.setblocking(True)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, linger_s))
    return server, client, listener


def drain(server):
    """Reads server until its peer's close is over (EOF, or a reset when it let go at once)."""
    server.settimeout(30)
    try:
        while server.recv(65536):
            pass
    except ConnectionResetError:
        pass
