"""The flood benchmark's clients: real OpenSSH logins (legitimate users, the admin, the
incident's herd) and raw TCP floods (banner-and-stall, connect-and-close).

Every client binds a loopback source address (127.0.0.0/8 only) and connects to 127.0.0.1;
every loop runs until stop() and every login has a deadline, so nothing outlives its phase.

Standard library only.
"""

import errno
import itertools
import selectors
import socket
import subprocess
import threading
import time


def _loopback(address):
    check = socket.inet_aton(address)
    if check[0] != 127:
        raise ValueError(f"{address}: the flood benchmark only uses 127.0.0.0/8")
    return address


class Loop:
    """Work on a thread of its own, run by _run() until stop() sets _stop."""

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        raise NotImplementedError

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()


class Login:
    """One real `ssh` login, timed: started, duration, ok, and why it failed."""

    __slots__ = ("who", "source", "started", "duration", "ok", "error")

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}


def ssh_argv(key, user, port, source):
    """A non-interactive ssh login that runs `echo flood-ok` (BatchMode: never prompts)."""
    return ["ssh", "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=10", "-b", _loopback(source), "-p", str(port),
            f"{user}@127.0.0.1", "echo flood-ok"]


def ssh_login(who, key, user, port, source, deadline_s):
    """Runs one login to completion or its deadline (then the client is killed: a failure)."""
    login = Login()
    login.who, login.source = who, source
    login.started = time.monotonic()
    proc = subprocess.Popen(ssh_argv(key, user, port, source), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=deadline_s)
        login.ok = proc.returncode == 0 and b"flood-ok" in out
        text = err.decode("utf-8", "replace").strip().splitlines()
        login.error = None if login.ok else (text[-1] if text else f"exit {proc.returncode}")
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        login.ok, login.error = False, f"no login within {deadline_s:.0f}s"
    login.duration = time.monotonic() - login.started
    return login


class Periodic(Loop):
    """Starts a login every interval_s from one source, whether or not the last one ended
    (open loop, as users arrive); collects every login."""

    def __init__(self, who, key, user, port, source, interval_s, deadline_s):
        super().__init__()
        self.args = (who, key, user, port, source, deadline_s)
        self.interval_s = interval_s
        self.logins, self._lock = [], threading.Lock()
        self._workers = []

    def _one(self):
        login = ssh_login(*self.args)
        with self._lock:
            self.logins.append(login)

    def _run(self):
        next_at = time.monotonic()
        while not self._stop.is_set():
            worker = threading.Thread(target=self._one, daemon=True)
            worker.start()
            self._workers.append(worker)
            next_at += self.interval_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self):
        """Starts no more logins and waits for those under way (each has its deadline)."""
        super().stop()
        for worker in self._workers:
            worker.join()
        return self.logins


class Herd:
    """The incident's loop: `clients` ssh logins from one address at once, each starting
    again as soon as it ends (after pause_s when it was refused)."""

    def __init__(self, key, user, port, source, clients, deadline_s, pause_s):
        self.args = ("herd", key, user, port, source, deadline_s)
        self.pause_s = pause_s
        self.attempts = self.served = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self):
        while not self._stop.is_set():
            login = ssh_login(*self.args)
            with self._lock:
                self.attempts += 1
                self.served += login.ok
            if not login.ok:
                self._stop.wait(self.pause_s)

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join()

    def connections(self):
        return self.attempts


class SocketFlood(Loop):
    """Raw TCP from many source addresses, as fast as the bounds allow, on one thread.

    mode "stall": connect, send an SSH identification line, then nothing (DHEat-style: the
    server is left waiting for the key exchange); a connection is replaced when the server
    closes it, with at most max_open open at once. mode "storm": connect and close at once.
    At most rate_per_s new connections a second either way.
    """

    BANNER = b"SSH-2.0-OpenSSH_9.2p1 flood\r\n"

    def __init__(self, mode, port, sources, rate_per_s, max_open):
        assert mode in ("stall", "storm")
        super().__init__()
        self.mode, self.port = mode, port
        self.sources = itertools.cycle([_loopback(s) for s in sources])
        self.rate_per_s, self.max_open = rate_per_s, max_open
        self.opened = self.connected = self.closed_by_server = self.failed = 0
        self.peak_open = 0

    def _open(self, sel):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((next(self.sources), 0))
            err = s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            s.close()
            self.failed += 1
            return
        if err not in (0, errno.EINPROGRESS):
            s.close()
            self.failed += 1
            return
        self.opened += 1
        sel.register(s, selectors.EVENT_WRITE, ("connecting", time.monotonic()))

    def _run(self):
        sel = selectors.DefaultSelector()
        started = last_expiry = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            allowed = int((now - started) * self.rate_per_s) - self.opened - self.failed
            while allowed > 0 and len(sel.get_map()) < self.max_open:
                self._open(sel)
                allowed -= 1
            self.peak_open = max(self.peak_open, len(sel.get_map()))
            for key, _ in sel.select(timeout=0.005):
                self._event(sel, key)
            if now - last_expiry > 0.5:
                self._expire(sel, now)
                last_expiry = now
        for key in list(sel.get_map().values()):
            sel.unregister(key.fileobj)
            key.fileobj.close()
        sel.close()

    def _event(self, sel, key):
        s, (state, _) = key.fileobj, key.data
        if state == "connecting":
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                self.failed += 1
                self._close(sel, s)
                return
            self.connected += 1
            if self.mode == "storm":
                self._close(sel, s)
                return
            try:
                s.send(self.BANNER)
            except OSError:
                self._close(sel, s)
                return
            sel.modify(s, selectors.EVENT_READ, ("stalled", time.monotonic()))
        else:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.closed_by_server += 1
                self._close(sel, s)

    def _expire(self, sel, now):
        # A connect that a full backlog never completes is abandoned after 3 s (the SYN is
        # retried by the kernel meanwhile): the storm moves on, as a real one would.
        for key in list(sel.get_map().values()):
            state, since = key.data
            if state == "connecting" and now - since > 3.0:
                self.failed += 1
                self._close(sel, key.fileobj)

    @staticmethod
    def _close(sel, s):
        sel.unregister(s)
        s.close()

    def connections(self):
        return self.connected
