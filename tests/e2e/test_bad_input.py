#!/usr/bin/python3
"""Hostile input against the live daemon: notify datagrams and control requests.

Notify socket (mode 0666, so anyone on the host can write to it): thousands of datagrams
from outside every instance, binary, oversized up to 256 KiB, with descriptors attached,
sent at once from several threads; bad datagrams from an instance's own main process (an
oversized READY=1, READY=1 with a NUL byte, near misses); and datagrams whose sender usherd
cannot see at all (from outside its pid namespace, so the kernel hands it pid 0). None may
end a startup; every one that is refused is counted in usherd_notify_rejected_total; every
passed descriptor is closed; the instance still becomes ready with a proper READY=1.

Control socket: random garbage, structural garbage (deep nesting, trailing data, NUL
bytes, wrong types), partial requests (cut, then half-closed or dropped), requests at the
64 KiB limit and one byte over, a megabyte sent without reading the answer, a request
trickled in slowly, and a hundred connections that never finish, all at once. Each gets an
error answer where one can be delivered; the counters in status and metrics match what the
clients saw; and throughout, usherctl and a service keep being served and usherd's fds
return to their baseline.

Descriptors attached by anyone (a datagram on the notify socket, a record an instance writes to
its captured stderr), among them the one that froze usherd's loop before: a TCP socket with
SO_LINGER and unsent data, whose last close() blocks for the linger time. The kernel refuses
them where it can (SO_PASSRIGHTS, Linux 6.16+), else usherd closes them on a thread of its own;
either way usherd answers status promptly throughout and its fds return to their baseline.

The seed of the random inputs is printed; USHERD_BAD_INPUT_SEED=N repeats a run and
USHERD_BAD_INPUT_COUNT=N changes how many random inputs each kind gets (default 2000).
"""

import array
import json
import os
import random
import re
import socket
import struct
import threading
import time

import harness
# fd_count leaves out closing control connections
from loadkit import LoopProbe, drain, fd_count, lingering_socket, wait_until
from harness import check, check_eq

SEED = int(os.environ.get("USHERD_BAD_INPUT_SEED", str(random.SystemRandom().randrange(1 << 30))))
COUNT = int(os.environ.get("USHERD_BAD_INPUT_COUNT", "2000"))
MAX_REQUEST = 64 * 1024
REQUEST_DEADLINE_S = 5

# An instance that sends what the test asks for through NOTIFY_SOCKET from its own main
# process (so its datagrams are attributed), and says so on the connection.
NOTIFIER = r'''
import os, socket, sys
path = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
send = lambda data: s.sendto(data, path)
out, inp = os.fdopen(1, "wb", buffering=0), os.fdopen(0, "rb", buffering=0)
out.write(b"hello\n")
for line in iter(inp.readline, b""):
    word = line.strip()
    if word == b"bad":
        send(b"READY=1\n" + b"x" * 8000)      # oversized: refused, whatever it starts with
        send(b"READY=1\n\0")                   # a NUL byte: refused
        send(b"STATUS=ok\0READY=1")            # a NUL byte: refused
        send(b"")
        send(b"READY=0\nREADY=true\nREADY= 1\nREADY\n=1\nready=1\nREADY=1 \n READY=1")
        send(bytes(range(1, 256)) * 4)
        send(b"STATUS=marker-bad")
        out.write(b"sent 3\n")                 # how many of these must be refused
    elif word.startswith(b"marker "):
        send(b"STATUS=marker-" + word[7:])
        out.write(b"sent 0\n")
    elif word == b"ready":
        send(b"READY=1")
        out.write(b"ok\n")
'''


# An instance that, when asked, attaches a lingering TCP socket (see loadkit.lingering_socket)
# to a record on its stderr, the capture socket usherd reads, and says whether the kernel took
# it; then keeps the socket's peer unread until told to drain it.
FD_SENDER = r'''
import array, os, socket, struct, sys
sys.path.insert(0, os.environ["LOADKIT_DIR"])
from loadkit import drain, lingering_socket
out, inp = os.fdopen(1, "wb", buffering=0), os.fdopen(0, "rb", buffering=0)
err = socket.socket(fileno=2)
out.write(b"hello\n")
server = None
for line in iter(inp.readline, b""):
    word = line.strip()
    if word == b"send":
        server, client, listener = lingering_socket()
        try:
            err.sendmsg([b"a record with a socket attached\n"],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [client.fileno()]))])
            result = b"sent"
        except PermissionError:
            result = b"refused"
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        out.write(result + b"\n")
    elif word == b"drain":
        drain(server)
        out.write(b"drained\n")
'''

# Loose enough for a loaded two-core machine; a loop blocked by a close waits the linger (4 s).
PROMPT_MS = 250 if harness.sanitized() else 50


def units(notifier_path):
    return {
        "echo.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
        "echo@.service": "[Service]\nExecStart=/bin/echo hello\nStandardInput=socket\n",
        "notifier.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
        "notifier@.service": f"[Service]\nType=notify\nExecStart=/usr/bin/python3 {notifier_path}\n"
                             "StandardInput=socket\nStandardError=journal\n",
    }


def fetch(port):
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        return s.makefile("rb").read()


def all_fds(pid):
    """usherd's open fds, control connections included."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_fds(pid, baseline, what, count=fd_count, timeout=REQUEST_DEADLINE_S + 10):
    """Waits until usherd holds baseline fds again (a connection ends at the latest at its
    deadline)."""
    wait_until(lambda: count(pid) == baseline, timeout,
               f"{what}: usherd's fds back to {baseline}")


class Line:
    """A line-oriented conversation with an instance over its connection."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.file = self.sock.makefile("rwb", buffering=0)
        check_eq(self.file.readline(), b"hello\n", "the notifier greets")

    def ask(self, word):
        self.file.write(word + b"\n")
        return self.file.readline().strip()

    def close(self):
        self.file.close()
        self.sock.close()


class Threads:
    """Runs functions on threads; join() waits for all and re-raises the first failure."""

    def __init__(self):
        self.threads, self.errors = [], []

    def start(self, func, *args):
        def guarded():
            try:
                func(*args)
            except BaseException as e:  # noqa: BLE001 - re-raised by join()
                self.errors.append(e)

        t = threading.Thread(target=guarded, daemon=True)
        t.start()
        self.threads.append(t)

    def join(self, timeout=120):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
            check(not t.is_alive(), f"a client thread finished within {timeout}s")
        if self.errors:
            raise self.errors[0]


def random_datagram(rng):
    size = rng.choice([0, 1, 7, 64, 4095, 4096, 4097, rng.randrange(8192)])
    data = bytes(rng.randrange(256) for _ in range(min(size, 512)))
    data = (data * (size // max(len(data), 1) + 1))[:size]
    if rng.random() < 0.3:
        data = b"READY=1\n" + data
    return data


def send_datagrams(path, datagrams, fds_per_datagram=0, refused=None):
    """Sends each datagram; with descriptors attached, those the kernel refuses (the socket
    turned fd passing off: SO_PASSRIGHTS) are counted in refused[0] and never arrive."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, 32, 1 << 20)  # SO_SNDBUFFORCE: room for 256 KiB
        s.settimeout(30)
        for data in datagrams:
            if fds_per_datagram:
                fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(fds_per_datagram)]
                try:
                    s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                        array.array("i", fds))], 0, path)
                except PermissionError:
                    refused[0] += 1
                finally:
                    for fd in fds:
                        os.close(fd)
            else:
                s.sendto(data, path)


def test_notify_datagrams_from_outside_and_inside_an_instance_end_no_startup():
    rng = random.Random(SEED)
    print(f"seed {SEED} (USHERD_BAD_INPUT_SEED={SEED} repeats this run)")
    with harness.TempDir("usherd-notifier.") as tmp:
        notifier = os.path.join(tmp, "notifier.py")
        harness.write_file(notifier, NOTIFIER)
        with harness.Usherd(units(notifier)) as usherd:
            pid = usherd.proc.pid
            path = os.path.join(usherd.runtime_dir, "notify")
            echo = usherd.port("echo.socket")
            check_eq(fetch(echo), b"hello\n", "echo before")
            usherd.wait_instances_gone("echo.socket")
            baseline = fd_count(pid)
            rejected0 = usherd.status()["notify_rejected"]

            line = Line(usherd.port("notifier.socket"))
            try:
                with_instance = fd_count(pid)  # its pidfd and output pipe
                # Bad datagrams from the instance's own main process.
                mark = usherd.log_mark()
                refused_inside = int(line.ask(b"bad").split()[1])
                usherd.wait_log(r'status instance=notifier@\S+ "marker-bad"', start_at=mark)
                status = usherd.status()
                check_eq(status["startups"]["current"], 1, "startups after bad datagrams")
                check("ready instance=" not in usherd.log_text(), "no instance became ready")
                check_eq(status["notify_rejected"] - rejected0, refused_inside,
                         "refused datagrams from the instance")

                # Many at once from outside every instance: random binary of every size up
                # to 8 KiB from four threads, 256 KiB ones, and descriptors attached.
                randoms = [random_datagram(rng) for _ in range(COUNT)]
                huge = [b"READY=1\n" + bytes([rng.randrange(1, 256)]) * (256 * 1024)
                        for _ in range(8)]
                with_fds = [b"READY=1"] * 200
                senders = Threads()
                for i in range(4):
                    senders.start(send_datagrams, path, randoms[i::4])
                senders.start(send_datagrams, path, huge)
                kernel_refused = [0]
                senders.start(send_datagrams, path, with_fds, 3, kernel_refused)
                # usherd keeps serving while the burst is under way.
                check_eq(fetch(echo), b"hello\n", "echo during the burst")
                senders.join()
                # Where the kernel refuses descriptors, those datagrams never reach usherd.
                check(kernel_refused[0] in (0, len(with_fds)),
                      f"the kernel refuses all or none: {kernel_refused[0]}")
                outside = len(randoms) + len(huge) + len(with_fds) - kernel_refused[0]

                # The socket is one queue: once the instance's marker sent after the burst
                # is logged, usherd has read every datagram of the burst.
                mark = usherd.log_mark()
                line.ask(b"marker after-burst")
                usherd.wait_log(r'status instance=notifier@\S+ "marker-after-burst"',
                                start_at=mark)
                status = usherd.status()
                check_eq(status["startups"]["current"], 1, "startups after the burst")
                check_eq(status["notify_rejected"] - rejected0, refused_inside + outside,
                         "every datagram from outside is refused and counted")
                metrics = usherd.usherctl("metrics").stdout
                check(f"usherd_notify_rejected_total {status['notify_rejected']}" in metrics,
                      "metrics show the same count")
                usherd.wait_instances_gone("echo.socket")
                check_eq(fd_count(pid), with_instance,
                         "usherd's fds after 600 passed descriptors (each closed on arrival)")

                # A proper READY=1 still works.
                mark = usherd.log_mark()
                check_eq(line.ask(b"ready"), b"ok", "the notifier sent READY=1")
                usherd.wait_log(r"ready instance=notifier@\S+ .*via=notify", start_at=mark)
                check_eq(usherd.status()["startups"]["current"], 0, "startups after READY=1")
            finally:
                line.close()
            usherd.wait_instances_gone("notifier.socket")
            check_eq(fetch(echo), b"hello\n", "echo after")
            wait_fds(pid, baseline, "after the notifier ended")
            print(f"notify: {outside} datagrams from outside ({len(huge)} of 256 KiB, "
                  f"{len(with_fds) * 3} descriptors passed), {refused_inside} bad ones from an "
                  f"instance: all refused and counted, no startup ended, fds {baseline} -> "
                  f"{fd_count(pid)}")


# usherd as pid 1 of a pid namespace of its own: a sender outside it has no pid there, and
# the kernel's SCM_CREDENTIALS carry pid 0. The launcher forwards signals and exits as
# usherd does.
PIDNS_LAUNCHER = r'''
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x20000000) != 0:  # CLONE_NEWPID
    sys.exit("unshare(CLONE_NEWPID): " + os.strerror(ctypes.get_errno()))
child = os.fork()
if child == 0:
    os.execv(sys.argv[1], sys.argv[1:])
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
    signal.signal(s, lambda n, f: os.kill(child, n))
_, status = os.waitpid(child, 0)
sys.exit(os.waitstatus_to_exitcode(status))
'''


class PidNamespaceUsherd(harness.Usherd):
    def argv(self):
        return ["/usr/bin/python3", "-c", PIDNS_LAUNCHER] + super().argv()


def test_datagrams_without_a_sender_usherd_can_see_are_refused():
    harness.require_root()
    units_ = {"echo.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
              "echo@.service": "[Service]\nExecStart=/bin/echo hello\nStandardInput=socket\n"}
    with PidNamespaceUsherd(units_) as usherd:
        check_eq(usherd.status()["pid"], 1, "usherd is pid 1 of its own namespace")
        path = os.path.join(usherd.runtime_dir, "notify")
        datagrams = [b"READY=1", b"READY=1\nSTATUS=x", b"\xff" * 300, b""] * 25
        # The last one has a size of its own: when it is logged, the queue before it was read.
        datagrams.append(b"READY=1\n" + b"x" * 1226)
        send_datagrams(path, datagrams)
        usherd.wait_log(r"notify rejected sender_pid=\S+ bytes=1234 ", what="the last datagram")
        refused = re.findall(r"notify rejected sender_pid=(\d+) bytes=\d+ reason=(\S+)",
                             usherd.log_text())
        check_eq(refused, [("0", "unattributed")] * len(datagrams),
                 "every datagram refused as from a sender with no pid usherd can see")
        check_eq(usherd.status()["notify_rejected"], len(datagrams), "refused datagrams")
        check_eq(fetch(usherd.port("echo.socket")), b"hello\n", "usherd still serves")


# ---------------------------------------------------------------------------------------
# Control requests


def control_call(path, body, *, shut=True, read=True, timeout=20):
    """Sends body on a fresh control connection; returns the parsed answer (None if the
    connection ended without one)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.settimeout(timeout)
        try:
            s.sendall(body)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if not read:
            return None
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    if not data:
        return None
    check(data.endswith(b"\n") and data.count(b"\n") == 1, f"one answer line: {data[:200]!r}")
    answer = json.loads(data)
    check(isinstance(answer.get("ok"), bool), f"answer has ok: {answer}")
    check_eq(answer.get("version"), 1, "answer version")
    if not answer["ok"]:
        check(isinstance(answer.get("error"), str) and answer["error"], "error text")
    return answer


class Tally:
    """What the clients saw, to compare with the daemon's counters."""

    def __init__(self):
        self.ok = self.error = self.tried = 0
        self.unseen = 0  # answered by usherd (an error) to a client that had already gone
        self.lock = threading.Lock()

    def add(self, answer):
        with self.lock:
            self.tried += 1
            if answer is not None:
                if answer["ok"]:
                    self.ok += 1
                else:
                    self.error += 1


def garbage_bodies(rng, count):
    valid = b'{"version":1,"command":"status"}'
    bodies = [
        b"", b"\n", b"null", b"0", b'"status"', b"[]", b"{}", b"\x00" * 64, b"\xef\xbb\xbf" + valid,
        valid.decode().encode("utf-16"), valid + b" trailing", valid + valid, b"[" * 10000 + b"]" * 10000,
        b'{"version":1,"command":"status",' * 2000, b'{"version":1e999,"command":"status"}',
        b'{"version":1.0,"command":"status"}', b'{"version":-1,"command":"status"}',
        b'{"version":1,"command":"status\\u0000"}', b'{"version":1,"command":"\xff\xfe"}',
        b'{"version":1,"command":"stop","id":{"$ne":null}}', b'{"version":1,"command":null}',
        b'{"version":1,"command":"' + b"x" * 60000 + b'"}', b'{"version":1,"command":["status"]}',
    ]
    while len(bodies) < count:
        kind = rng.randrange(3)
        if kind == 0:  # random bytes
            bodies.append(bytes(rng.randrange(256) for _ in range(rng.randrange(200))))
        elif kind == 1:  # a valid request with bytes flipped, cut or repeated
            body = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                body[rng.randrange(len(body))] = rng.randrange(256)
            bodies.append(bytes(body[: rng.randrange(len(body) + 1)]))
        else:  # JSON of the wrong shape
            bodies.append(json.dumps(rng.choice([
                {"version": 1, "command": rng.choice(["", "STATUS", "stop", "reboot", "list "])},
                {"version": rng.choice([0, 2, "1", None, True]), "command": "status"},
                {"command": "status"}, [1, {"version": 1}], rng.random(),
            ])).encode())
    return bodies


def test_control_requests_garbage_partial_oversized_and_slow():
    rng = random.Random(SEED + 1)
    print(f"seed {SEED}")
    units_ = {"echo.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
              "echo@.service": "[Service]\nExecStart=/bin/echo hello\nStandardInput=socket\n"}
    with harness.Usherd(units_) as usherd:
        pid = usherd.proc.pid
        path = os.path.join(usherd.runtime_dir, "control")
        echo = usherd.port("echo.socket")
        baseline = fd_count(pid)
        before = usherd.status()["control_requests"]
        tally = Tally()

        # Slow: a hundred connections that never finish their request, held open while the
        # rest runs; each is answered at the deadline.
        idle = []
        for _ in range(100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)  # blocking: waits for room in the listen backlog
            s.settimeout(REQUEST_DEADLINE_S + 15)
            s.sendall(b'{"version":1,')
            idle.append(s)

        # Garbage, from four clients at once.
        bodies = garbage_bodies(rng, COUNT)

        def run(chunk):
            for body in chunk:
                answer = control_call(path, body)
                check(answer is not None, f"an answer to {body[:40]!r}")
                check(not answer["ok"] or body.startswith(b'{"version":1,"command":"status"'),
                      f"{body[:60]!r} refused: {answer}")
                tally.add(answer)

        clients = Threads()
        for i in range(4):
            clients.start(run, bodies[i::4])
        # usherctl and the service are served meanwhile.
        check_eq(fetch(echo), b"hello\n", "echo during the garbage")
        check_eq(usherd.usherctl("list", "--json").returncode, 0, "usherctl during the garbage")
        tally.ok += 1
        clients.join()

        # Partial: cut at every length, then half-closed (answered) or dropped (nothing to
        # answer; the connection must still be freed).
        valid = b'{"version":1,"command":"list"}'
        for cut in range(len(valid)):
            answer = control_call(path, valid[:cut])
            check(answer is not None and not answer["ok"], f"cut at {cut}: {answer}")
            tally.add(answer)
            control_call(path, valid[:cut], shut=False, read=False)
            tally.tried += 1
            tally.unseen += 1

        # At the limit and one byte over.
        padded = valid + b" " * (MAX_REQUEST - len(valid))
        answer = control_call(path, padded)
        check(answer["ok"], f"a request of exactly {MAX_REQUEST} bytes is served: {answer}")
        tally.add(answer)
        answer = control_call(path, padded + b" ")
        check_eq(answer, {"version": 1, "ok": False, "error": "request too large"}, "one byte over")
        tally.add(answer)
        # A megabyte without a half-close: answered as soon as the limit passes.
        answer = control_call(path, b"{" * (1 << 20), shut=False)
        check_eq(answer["error"], "request too large", "a megabyte")
        tally.add(answer)

        # Slow but in time: a request trickled in ten pieces.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            s.settimeout(20)
            for i in range(0, len(valid), 3):
                s.sendall(valid[i:i + 3])
                time.sleep(0.1)  # the pacing is the input here, not a wait for an event
            s.shutdown(socket.SHUT_WR)
            answer = json.loads(s.makefile("rb").read())
        check(answer["ok"], f"a slow request within the deadline is served: {answer}")
        tally.add(answer)

        # The idle ones: each answered "not completed in time", then closed.
        for s in idle:
            data = s.makefile("rb").read()
            s.close()
            answer = json.loads(data)
            check_eq(answer["error"], "request not completed in time", "an idle connection")
            tally.add(answer)

        # Every control connection closed, the idle ones and this test's status calls too.
        wait_fds(pid, baseline, "after every control connection ended", count=all_fds)
        fds_after = all_fds(pid)
        after = usherd.status()["control_requests"]
        check_eq(after["refused"] - before["refused"], tally.error + tally.unseen,
                 "error answers counted by usherd vs seen by clients (and dropped)")
        # The first status call is counted after it answered, so it is in the difference.
        check_eq(after["answered"] - before["answered"], tally.ok + 1, "ok answers")
        metrics = usherd.usherctl("metrics").stdout
        check(f'usherd_control_requests_total{{result="error"}} {after["refused"]}' in metrics,
              "metrics show the error count")
        check_eq(fetch(echo), b"hello\n", "echo after")
        print(f"control: {tally.tried} requests ({len(bodies)} garbage, "
              f"{len(idle)} never finished, partial, at and over {MAX_REQUEST} bytes, 1 MiB, "
              f"slow): {tally.error} error answers, {tally.ok} served, usherd up, "
              f"fds {baseline} -> {fds_after}")


def test_descriptors_attached_to_notify_datagrams_and_output_never_block_the_loop():
    with harness.TempDir("usherd-fdsender.") as tmp:
        sender = os.path.join(tmp, "fd_sender.py")
        harness.write_file(sender, FD_SENDER)
        loadkit_dir = os.path.dirname(os.path.abspath(__file__))
        fd_units = {
            "talker.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
            "talker@.service": f"[Service]\nExecStart=/usr/bin/python3 {sender}\n"
                               f"Environment=LOADKIT_DIR={loadkit_dir} BUILD_DIR={harness.build_dir()}\n"
                               "StandardInput=socket\nStandardError=journal\n",
        }
        with harness.Usherd(fd_units) as usherd:
            pid = usherd.proc.pid
            baseline = fd_count(pid)
            notify_path = os.path.join(usherd.runtime_dir, "notify")

            # 1. A datagram on the notify socket, from outside every instance.
            server, client, listener = lingering_socket()
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s, \
                    LoopProbe(usherd.runtime_dir) as probe:
                try:
                    s.sendmsg([b"READY=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                              array.array("i", [client.fileno()]))], 0, notify_path)
                    notify_outcome = "sent"
                except PermissionError:
                    notify_outcome = "refused by the kernel"
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
                client.close()  # the datagram holds the last reference, if it went
                wait_until(lambda: len(probe.times) >= 30, 20, "30 status answers")
                drain(server)
            server.close()
            listener.close()
            print(f"notify datagram with a lingering socket: {notify_outcome}; "
                  f"{len(probe.times)} status answers, worst {probe.worst_ms():.1f} ms")
            check(not probe.errors, f"status answered throughout: {probe.errors[:3]}")
            check(probe.worst_ms() < PROMPT_MS,
                  f"status answered within {PROMPT_MS} ms throughout (worst "
                  f"{probe.worst_ms():.1f} ms)")

            # 2. A record on an instance's captured stderr.
            conn = socket.create_connection(("127.0.0.1", usherd.port("talker.socket")),
                                            timeout=20)
            talk = conn.makefile("rwb", buffering=0)
            check_eq(talk.readline(), b"hello\n", "the sender greets")
            with LoopProbe(usherd.runtime_dir) as probe:
                talk.write(b"send\n")
                output_outcome = talk.readline().strip().decode()
                wait_until(lambda: len(probe.times) >= 30, 20, "30 status answers")
                talk.write(b"drain\n")
                check_eq(talk.readline(), b"drained\n", "the sender drained its socket")
            print(f"stderr record with a lingering socket: {output_outcome}; "
                  f"{len(probe.times)} status answers, worst {probe.worst_ms():.1f} ms")
            check(not probe.errors, f"status answered throughout: {probe.errors[:3]}")
            check(probe.worst_ms() < PROMPT_MS,
                  f"status answered within {PROMPT_MS} ms throughout (worst "
                  f"{probe.worst_ms():.1f} ms)")
            if output_outcome == "sent":
                usherd.wait_log(r'output instance=talker@\S+ "a record with a socket attached"')
            talk.close()
            conn.close()
            usherd.wait_instances_gone("talker.socket")
            wait_fds(pid, baseline, "after the attached descriptors")


# An instance that reports a STATUS= full of control characters and then waits, never ready.
STATUS_SENDER = r'''
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"STATUS=\rlooks\x1b[2J\x1b]0;title\x07 fine", os.environ["NOTIFY_SOCKET"])
sys.stdin.buffer.read()
'''

FORGED = "2026-01-01T00:00:00.000 info accept socket=forged peer=1.2.3.4:5"


def test_unix_clients_with_hostile_names_stay_one_escaped_line_everywhere():
    with harness.TempDir("usherd-hostile.") as tmp:
        status_sender = os.path.join(tmp, "status_sender.py")
        harness.write_file(status_sender, STATUS_SENDER)
        listen_path = os.path.join(tmp, "u.sock")
        hostile_units = {
            "local.socket": f"[Socket]\nListenStream={listen_path}\nAccept=yes\n"
                            "X-StartupTimeoutSec=2\n",
            "local@.service": f"[Service]\nType=notify\nExecStart=/usr/bin/python3 {status_sender}\n"
                              "StandardInput=socket\nStandardError=journal\n",
        }
        with harness.Usherd(hostile_units) as usherd:
            names = [b"\0" + ("x\n" + FORGED + "\x1b[31m").encode(),
                     os.path.join(tmp, "c\n" + FORGED[:40] + " \x1b]0;t\x07").encode()]
            clients = []
            for name in names:
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.bind(name)
                c.connect(listen_path)
                clients.append(c)
            wait_until(lambda: usherd.status()["startups"]["current"] == 2, 20,
                       "both clients' instances starting")
            listing = usherd.usherctl("list").stdout
            rows = listing.splitlines()
            print(listing)
            check_eq(len(rows), 1 + len(names) + 1, "usherctl list: a header, a row per instance, "
                     "a count")
            check("\x1b" not in listing and "\x07" not in listing,
                  "no terminal control byte reaches usherctl's output")
            check("\\n2026-01-01T00:00:00.000\\x20info" in listing,
                  "usherctl list shows the abstract name escaped")
            wait_until(lambda: usherd.log_text().count("timeout instance=local@") == 2, 20,
                       "both instances timed out")
            for c in clients:
                c.close()
            usherd.wait_instances_gone("local.socket")
            log = usherd.log_text()
            check(not any(line.startswith(FORGED[:30]) for line in log.splitlines()),
                  "no forged line in the log")
            check("\x1b" not in log and "\x07" not in log and "\r" not in log,
                  "no raw control byte in the log")
            for word in ("accept", "timeout"):
                lines = [l for l in log.splitlines() if f" {word} " in l and "socket=local" in l]
                check(len(lines) >= len(names), f"{word} lines for both clients")
                check(all("\\x20info\\x20accept" in l for l in lines),
                      f"every {word} line carries the peer's name escaped")
            check(re.search(r'status instance=local@\S+ "\\rlooks\\x1b\[2J\\x1b\]0;title\\x07 fine"',
                            log), "STATUS= is logged escaped, \\r and ESC included")


if __name__ == "__main__":
    harness.main(globals())
