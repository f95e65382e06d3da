"""What the flood benchmark reads from /proc: a contender's process tree, its unauthenticated
sshd processes, its CPU time and memory, and the host's CPU time; and how the tree is ended.

A contender is one root process (usherd, sshd -D, xinetd, systemd-socket-activate, tcpsvd)
and everything below it. None of them daemonizes or reparents its children, so "the tree" is
what it runs: every per-connection sshd, its privilege-separated child and the
AuthorizedKeysCommand.

Unauthenticated sshd processes: OpenSSH names each connection's monitor after the user only
as soon as the client names it ("sshd: USER [priv]", "sshd-session: USER [priv]" in OpenSSH
10), before authentication; what changes at authentication is its child: the unprivileged
"USER [net]" process exits and the session, "sshd: USER@notty", follows. So a connection (its
monitor: the first sshd below the contender or below sshd's "[listener]") counts as
unauthenticated while it has a "[net]" child, or no child and no user name yet: what
MaxStartups bounds. The "[net]" child outlives sshd's "Accepted" line by a moment, so this
count can exceed by one or two, at a sample's instant, what usherd counts (which ends a
startup at that line).

Standard library only.
"""

import os
import signal
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
SSHD_NAMES = ("sshd", "sshd-session", "sshd-auth")


def _stat(pid):
    """(comm, ppid, cumulative CPU seconds incl. reaped children, state) of pid, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    comm = text[text.find("(") + 1:text.rfind(")")]
    fields = text[text.rfind(")") + 2:].split()
    # utime stime cutime cstime: fields 14-17 of proc(5); [11:15] after the command.
    cpu = sum(int(x) for x in fields[11:15]) / CLK_TCK
    return comm, int(fields[1]), cpu, fields[0]


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def snapshot():
    """{pid: (comm, ppid, cpu_s)} of every process on the host."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def tree(root, procs):
    """Pids of root and its live descendants in a snapshot."""
    children = {}
    for pid, (_, ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root] if root in procs else []
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def unauthenticated_connections(members, procs):
    """How many connections in the tree sshd is still authenticating (module comment)."""
    titles = {p: _cmdline(p) for p in members
              if procs[p][0] in SSHD_NAMES and procs[p][3] != "Z"}
    listeners = {p for p, t in titles.items() if "[listener]" in t}
    monitors = [p for p in titles if p not in listeners and procs[p][1] not in titles]
    monitors += [p for p in titles if p not in listeners and procs[p][1] in listeners]
    children = {}
    for p in titles:
        children.setdefault(procs[p][1], []).append(p)
    def authenticating(m):
        kids = [titles[c] for c in children.get(m, [])]
        if any("@" in t for t in kids):
            return False  # the session runs
        if any("[net]" in t for t in kids):
            return True  # the unprivileged pre-authentication child still works
        # No child: before privilege separation started (the title is still the command
        # line), or between authentication and the session (named "USER [priv]").
        return "[priv]" not in titles[m]

    return sum(1 for m in set(monitors) if authenticating(m))


class Sample:
    """One look at a contender: its process count, unauthenticated sshd monitors, CPU."""

    def __init__(self, root, with_memory):
        procs = snapshot()
        members = tree(root, procs)
        self.t = time.monotonic()
        self.processes = len(members)
        self.unauthenticated = unauthenticated_connections(members, procs)
        # Each live process's own and reaped children's CPU: everything the tree has used,
        # as every contender waits for its children (nothing is lost to init).
        self.cpu_s = sum(procs[p][2] for p in members)
        self.pss_kib = sum(_pss_kib(p) for p in members) if with_memory else None


def host_busy_s():
    """CPU seconds the host spent not idle (every core), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest is in user.
    values = [int(x) for x in fields[:8]]
    return (sum(values) - values[3] - values[4]) / CLK_TCK


def host_used_kib():
    """MemTotal - MemAvailable."""
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":", 1)
            info[key] = int(value.split()[0])
    return info["MemTotal"] - info["MemAvailable"]


def end_tree(proc, grace_s=5.0):
    """Ends a contender started as subprocess.Popen proc: SIGTERM, then SIGKILL to it and to
    every process that was in its tree (through pidfds, so a reused pid is never signalled).
    Returns the pids still alive 2 s later: none, unless something escaped or is unkillable."""
    fds = []
    for pid in tree(proc.pid, snapshot()):
        try:
            fds.append(os.pidfd_open(pid))
        except OSError:
            pass
    proc.terminate()
    try:
        proc.wait(grace_s)
    except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: SIGKILL below
        pass
    # Everything that was in the tree goes, including what the root leaves running on
    # purpose (usherd keeps established sessions across its own stop).
    for fd in fds:
        try:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        except OSError:
            pass
    if proc.poll() is None:
        proc.wait()
    deadline = time.monotonic() + 2.0
    left = []
    while True:
        left = [p for p in (_pidfd_pid(fd) for fd in fds) if p and _state(p) not in (None, "Z")]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for fd in fds:
        os.close(fd)
    return left


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("utf-8", "replace")
        return text[text.rfind(")") + 2]
    except OSError:
        return None


def _pidfd_pid(fd):
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("Pid:"):
                    pid = int(line.split()[1])
                    return pid if pid > 0 else None
    except OSError:
        pass
    return None


def pids_mentioning(text):
    """Pids whose command line contains text (the run's directory): what a run left."""
    out = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != me and text in _cmdline(int(name)):
            if _state(int(name)) not in (None, "Z"):
                out.append(int(name))
    return out
