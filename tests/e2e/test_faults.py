#!/usr/bin/python3
"""Faults usherd must survive: fd exhaustion, spawns that fail, instances killed by a signal,
a RuntimeDirectory= removed underneath. (usherd itself SIGKILLed and started again is in
test_restart.py.)

- EMFILE: usherd's RLIMIT_NOFILE is lowered under it (prlimit) so that accept4() fails; the
  listener pauses and retries on a timer, logs the episode once, and burns no CPU while it
  lasts, even with a usherctl request queued on the control socket; once the limit is back,
  the connections that waited are served. When the fd runs out one step later, in the spawn,
  that one connection is closed and counted and the listener pauses just the same.
- Spawn failures: a User= service with LimitNPROC= below that user's process count (root
  would ignore the limit), a binary removed after load, a User= naming no user. The
  connection is closed without a word, counted (spawn-failed), logged once, and the daemon
  goes on serving; once the cause is gone the same socket serves again.
- An instance killed by a signal before it was ready earns its block a crash penalty; one
  killed after it was ready does not. Both are logged with the signal.
- A RuntimeDirectory= removed while usherd runs is created again, with its mode, at the next
  spawn.
"""
# ctest-resource-lock: usherdtest

import os
import pwd
import re
import resource
import shutil
import signal
import subprocess
import threading
import time

import harness
import loadkit
from harness import check, check_eq

EXHAUSTION_S = 1.5


def lowest_free_fd(pid):
    used = {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")}
    return next(fd for fd in range(len(used) + 1) if fd not in used)


def log_lines(usherd, pattern, start_at=0):
    regex = re.compile(pattern)
    return [l for l in usherd.log_text().splitlines()[start_at:] if regex.search(l)]


def count_log(usherd, pattern, start_at=0):
    return len(log_lines(usherd, pattern, start_at))


def banner_then_ready(s):
    s.sendall(b"hello\n")
    return loadkit.read_until_closed(s, limit=6)


def exhaust(usherd, pid, soft):
    """Lowers usherd's soft RLIMIT_NOFILE to soft; returns the (soft, hard) it had."""
    before = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, before[1]))
    return before


def test_fd_exhaustion_pauses_accept_without_spinning_and_recovers():
    harness.require_binaries(loadkit.SLOW_AUTH)
    harness.skip_under_sanitizers("the sanitizer runtimes need fds of their own (UBSan's vptr "
                                  "check opens a pipe), so with usherd's fds exhausted they "
                                  "report errors that are not usherd's")
    with harness.Usherd(loadkit.slow_auth_units(delay_ms=20)) as usherd:
        pid = usherd.proc.pid
        port = usherd.port("login.socket")
        check(loadkit.login(port), "a login works before the exhaustion")
        loadkit.quiescent(usherd, ["login.socket"])
        fds_before = loadkit.fd_count(pid)

        # accept4() itself fails: the lowest free fd is at the limit.
        limits = exhaust(usherd, pid, lowest_free_fd(pid))
        mark = usherd.log_mark()
        waiting = [loadkit.connect(port) for _ in range(5)]
        usherd.wait_log(r"accept socket=login\.socket .*paused.*Too many open files",
                        start_at=mark, what="the listener paused on EMFILE")
        cpu_before = loadkit.cpu_seconds(pid)
        # A usherctl request queued on the control socket meets EMFILE too.
        control = {}
        asker = threading.Thread(
            target=lambda: control.update(rc=usherd.usherctl("status", check_rc=False)))
        asker.start()
        # The fault lasts a while (this is its duration, not a wait for an event); usherd
        # reports how many times it retried.
        time.sleep(EXHAUSTION_S)
        cpu = loadkit.cpu_seconds(pid) - cpu_before
        resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
        resumed = usherd.wait_log(r"accept socket=login\.socket .*resumed after \S+ \((\d+) "
                                  r"pauses\)", start_at=mark, what="the listener resumed")
        pauses = int(resumed.group(1))
        print(f"EMFILE on accept for {EXHAUSTION_S}s: {pauses} pauses, {cpu * 1000:.0f} ms of "
              "usherd's CPU")
        check(pauses >= 2, f"the listener was retried ({pauses} pauses)")
        # A busy loop burns the whole exhaustion; a paused listener next to nothing.
        check(cpu < 0.1 * EXHAUSTION_S, f"usherd used {cpu:.2f}s of CPU in {EXHAUSTION_S}s "
                                        "of exhaustion")
        check_eq(len(log_lines(usherd, r"^\S+ (error|warning) .*paused", start_at=mark)), 1,
                 "the episode logged once")
        for s in waiting:
            check_eq(banner_then_ready(s), b"ready\n", "a connection that waited is served")
            s.close()
        asker.join(timeout=30)
        check(control.get("rc") is not None and control["rc"].returncode == 0,
              f"usherctl status queued during the exhaustion is answered: {control}")

        # One step later: accept4() gets the last fd, the spawn finds none. That connection
        # is closed and counted, and the listener pauses instead of taking (and losing) the
        # next one at once; the others wait and are served. (Each retry before the limit is
        # back costs one more connection, so a slow test may see more than one closed.)
        loadkit.quiescent(usherd, ["login.socket"])
        limits = exhaust(usherd, pid, lowest_free_fd(pid) + 1)
        mark = usherd.log_mark()
        waiting = [loadkit.connect(port) for _ in range(8)]
        usherd.wait_log(r"accept socket=login\.socket .*paused.*Too many open files",
                        start_at=mark, what="the listener paused on EMFILE in the spawn")
        resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
        answers = [banner_then_ready(s) for s in waiting]
        for s in waiting:
            s.close()
        closed, served = answers.count(b""), answers.count(b"ready\n")
        print(f"EMFILE in the spawn: {closed} connection(s) closed, {served} served after the "
              "pause")
        check_eq(closed + served, len(waiting), f"every connection closed or served: {answers}")
        check(closed >= 1 and served >= 1, f"{closed} closed by the failed spawn, {served} "
                                           "served after the pause")
        status = loadkit.quiescent(usherd, ["login.socket"])
        sock = usherd.socket_status("login.socket", status)
        check_eq(sock["dropped"], {"spawn-failed": closed}, "drops")
        check_eq(sock["admitted"], 6 + len(waiting), "admitted")
        check_eq(loadkit.fd_count(pid), fds_before, "usherd's open fds afterwards")


def user_processes(uid):
    """How many processes (zombies included) uid owns."""
    count = 0
    for name in os.listdir("/proc"):
        try:
            count += name.isdigit() and os.stat(f"/proc/{name}").st_uid == uid
        except OSError:
            pass
    return count


def usherdtest_processes(count):
    """count sleeping processes owned by the test user (its RLIMIT_NPROC count)."""
    uid, gid, _ = harness.ensure_test_user()
    procs = [subprocess.Popen(["/bin/sleep", "120"], user=uid, group=gid, extra_groups=[],
                              stdin=subprocess.DEVNULL) for _ in range(count)]
    return procs


def test_spawn_failures_close_count_and_log_once():
    harness.require_root()
    harness.ensure_test_user()
    with harness.TempDir() as bindir:
        binary = os.path.join(bindir, "slow_auth")
        shutil.copy(loadkit.SLOW_AUTH, binary)
        units = {}
        units.update(loadkit.slow_auth_units("nproc", service_extra="User=usherdtest\n"
                                                                     "LimitNPROC=1\n"))
        units.update(loadkit.slow_auth_units("gone"))
        units["gone@.service"] = units["gone@.service"].replace(loadkit.SLOW_AUTH, binary)
        units.update(loadkit.slow_auth_units("nouser", service_extra="User=usherd-no-such-user\n"))
        units.update(loadkit.slow_auth_units("ok"))
        sleepers = usherdtest_processes(2)
        try:
            with harness.Usherd(units) as usherd:
                usherd.wait_log(r"error load socket=nouser\.socket .*no such user "
                                r"\"usherd-no-such-user\"", what="the bad User= refused")
                names = [s["name"] for s in usherd.status()["sockets"]]
                check_eq(sorted(names), ["gone.socket", "nproc.socket", "ok.socket"],
                         "sockets serving (the bad User= one is not bound)")
                nproc, gone, ok = (usherd.port(f"{n}.socket") for n in ("nproc", "gone", "ok"))
                check(loadkit.login(gone), "the binary works before it is removed")
                os.unlink(binary)
                mark = usherd.log_mark()
                for port in (nproc, gone) * 3:
                    check(not loadkit.login(port), "a failed spawn closes the connection")
                    check(loadkit.login(ok), "the daemon goes on serving")
                status = loadkit.quiescent(usherd, ["nproc.socket", "gone.socket", "ok.socket"])
                for name in ("nproc.socket", "gone.socket"):
                    check_eq(usherd.socket_status(name, status)["dropped"], {"spawn-failed": 3},
                             f"{name} drops")
                lines = log_lines(usherd, r"spawn instance=", start_at=mark)
                check_eq(len(lines), 6, f"one line per failed spawn:\n" + "\n".join(lines))
                check_eq(len({re.search(r"instance=(\S+)", l).group(1) for l in lines}), 6,
                         "each failed spawn logged once")
                check_eq(len([l for l in lines if "nproc@" in l and "Resource temporarily "
                              "unavailable" in l]), 3, "the LimitNPROC= failures say why")
                check_eq(len([l for l in lines if "gone@" in l and "No such file" in l]), 3,
                         "the missing binary failures say why")
                metrics = usherd.usherctl("metrics").stdout
                check("usherd_spawn_failures_total 6" in metrics, "spawn failures counted")

                # The causes gone, the same sockets serve again.
                for p in sleepers:
                    p.kill()
                    p.wait()
                # A session of an earlier test (same user, same lock) killed at its cleanup may
                # still be exiting, and counts against LimitNPROC= until it is reaped.
                uid = pwd.getpwnam(harness.TEST_USER).pw_uid
                loadkit.wait_until(lambda: user_processes(uid) == 0, 20,
                                   "no process of the test user left")
                shutil.copy(loadkit.SLOW_AUTH, binary)
                check(loadkit.login(nproc), "LimitNPROC= service serves once the user is idle")
                check(loadkit.login(gone), "the restored binary serves again")
                check(usherd.alive(), "usherd is running")
        finally:
            for p in sleepers:
                p.kill()
                p.wait()


def test_instances_killed_by_a_signal_are_logged_and_only_unready_ones_penalised():
    harness.require_binaries(loadkit.SLOW_AUTH)
    config = "[Policy]\nPerSourcePenalties=crash:30s min:10s max:60s\n"
    with harness.Usherd(loadkit.slow_auth_units(delay_ms=20), config=config) as usherd:
        port = usherd.port("login.socket")

        # Ready, then killed by SIGTERM: no penalty for its block.
        ready = loadkit.connect(port, "127.0.0.6")
        check_eq(banner_then_ready(ready), b"ready\n", "the session is ready")
        pid = usherd.status()["instances"][0]["pid"]
        os.kill(pid, signal.SIGTERM)
        check_eq(loadkit.read_until_closed(ready), b"", "the killed session's connection ends")
        ready.close()
        usherd.wait_log(rf"end instance=login@\S+ pid={pid} status=killed "
                        r"signal=Terminated lifetime=",
                        what="the end of the session killed by SIGTERM")
        check(loadkit.login(port, "127.0.0.6"), "its block is not penalised")

        # Killed before ready (a crash while authenticating): a crash penalty for its block.
        starting = loadkit.connect(port, "127.0.0.7")
        instance = loadkit.wait_until(lambda: usherd.status()["instances"], timeout=20,
                                      what="the instance started")[0]
        check_eq(instance["state"], "starting", "the instance waits for its banner")
        os.kill(instance["pid"], signal.SIGKILL)
        check_eq(loadkit.read_until_closed(starting), b"", "the killed instance's connection ends")
        starting.close()
        usherd.wait_log(rf"end instance=login@\S+ pid={instance['pid']} status=killed "
                        r"signal=Killed before-ready=yes", what="the end of the killed instance")
        status = loadkit.quiescent(usherd, ["login.socket"])
        check_eq(status["penalised_sources"], 1, "the crashing block is penalised")
        check(not loadkit.login(port, "127.0.0.7"), "the crashing block is refused")
        check(loadkit.login(port, "127.0.0.8"), "other blocks are served")
        check_eq(usherd.socket_status("login.socket")["dropped"], {"penalty": 1}, "drops")


def test_a_runtime_directory_removed_underneath_is_created_again():
    harness.require_root()
    name = f"usherd-test-faults-{os.getpid()}"
    path = f"/run/{name}"
    units = {
        "rt.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
        "rt@.service": f"""\
[Service]
ExecStart=/bin/sh -c 'stat -c "%%a %%F" "$RUNTIME_DIRECTORY"'
StandardInput=socket
StandardError=null
RuntimeDirectory={name}
RuntimeDirectoryMode=0710
RuntimeDirectoryPreserve=yes
""",
    }
    try:
        with harness.Usherd(units) as usherd:
            port = usherd.port("rt.socket")

            def ask():
                with loadkit.connect(port) as s:
                    return loadkit.read_until_closed(s).decode()

            check_eq(ask(), "710 directory\n", "the instance sees its runtime directory")
            shutil.rmtree(path)
            check_eq(ask(), "710 directory\n", "the next spawn creates it again")
            os.chmod(path, 0o777)
            check_eq(ask(), "710 directory\n", "with the mode asked for")
            loadkit.quiescent(usherd, ["rt.socket"])
            check_eq(usherd.socket_status("rt.socket")["dropped"], {}, "no drops")
    finally:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    harness.main(globals())
