#!/usr/bin/python3
"""Faulty or hostile instances against the live daemon: what an instance says about itself
must never free it from usherd's bounds.

- STOPPING=1 before READY=1 keeps the startup slot and the startup deadline: the instance is
  timed out and stopped like any other that never became ready.
- STOPPING=1 after READY=1 starts TimeoutStopSec=: an instance that then hangs is stopped
  with KillSignal= when it runs out, as systemd stops a deactivating service.
- usherd's own SIGTERM stops an instance that said STOPPING=1 and hangs (it does not wait
  for it without bound).
- STATUS= is logged at a bounded rate per instance: a flood of a hundred lines gives ten, and
  one line counting the rest.
- A template instantiated per connection (any instance specifier, even only in
  Description=) with User= and Group= asks NSS nothing per connection: strace of usherd's loop
  sees no /etc/passwd or /etc/group opened while connections are served; a User= that names
  the connection itself (%i) is refused at load rather than ignored (which ran it as root).
- Children stuck before their execve (WorkingDirectory= on a file system that never answers,
  tests/helpers/stall_fs) hold only their own socket: another socket keeps answering, status
  and metrics show the held socket and the stalled launches, and each stuck child is killed
  at the pre-exec deadline, counted once as spawn-failed, its source not penalised.
- AF_UNIX clients: IPAddressDeny=any does not refuse them (systemd's IP rules never apply
  to AF_UNIX), and per-source limits key them by uid (SO_PEERCRED), so one local user cannot
  use up another's.
- The runtime directory is trusted only when it is usherd's alone: one owned by another user,
  or writable by group or others, stops usherd with one clear line. A state line naming an
  unrelated process (its pid and start time are readable by anyone in /proc) adopts nothing
  and signals nothing: every process usherd starts leads its own session, and this one does
  not.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
import time

import harness
from harness import check, check_eq
from loadkit import wait_until

# An instance that sends the datagrams named on its command line, in order, says "sent" on
# its connection, then waits until the connection closes (or forever, ignoring SIGTERM with
# "stubborn").
SAYER = r'''
import os, signal, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for arg in sys.argv[1:]:
    if arg == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif arg.startswith("flood:"):
        for i in range(int(arg[6:])):
            s.sendto(b"STATUS=line %d" % i, os.environ["NOTIFY_SOCKET"])
    else:
        s.sendto(arg.encode(), os.environ["NOTIFY_SOCKET"])
os.write(1, b"sent\n")
while os.read(0, 4096):
    pass
if "stubborn" in sys.argv:
    signal.pause()
'''


def sayer_units(path, args, service_extra="", socket_extra=""):
    return {
        "say.socket": f"[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n{socket_extra}",
        "say@.service": f"[Service]\nType=notify\nExecStart=/usr/bin/python3 {path} {args}\n"
                        f"StandardInput=socket\nStandardError=journal\n{service_extra}",
    }


def instances(usherd):
    return json.loads(usherd.usherctl("list", "--json").stdout)["instances"]


def connect_and_hear(usherd):
    conn = socket.create_connection(("127.0.0.1", usherd.port("say.socket")), timeout=20)
    check_eq(conn.makefile("rb").readline(), b"sent\n", "the instance sent its datagrams")
    return conn


def test_stopping_before_ready_keeps_the_startup_slot_and_deadline():
    with harness.TempDir("usherd-sayer.") as tmp:
        path = os.path.join(tmp, "sayer.py")
        harness.write_file(path, SAYER)
        units = sayer_units(path, "STOPPING=1 stubborn", service_extra="TimeoutStopSec=1\n",
                            socket_extra="X-StartupTimeoutSec=1\n")
        with harness.Usherd(units) as usherd:
            conn = connect_and_hear(usherd)
            check_eq(usherd.status()["startups"]["current"], 1,
                     "an instance that said STOPPING=1 before READY=1 is still starting")
            usherd.wait_log(r"timeout instance=say@\S+ socket=say.socket .*startup not finished")
            usherd.wait_log(r"kill instance=say@\S+ .*SIGKILL")
            usherd.wait_log(r"end instance=say@\S+ .*status=killed signal=Killed before-ready=yes")
            check_eq(usherd.status()["startups"]["current"], 0, "its startup slot is free")
            conn.close()


def test_stopping_after_ready_is_bounded_by_timeout_stop_sec():
    with harness.TempDir("usherd-sayer.") as tmp:
        path = os.path.join(tmp, "sayer.py")
        harness.write_file(path, SAYER)
        units = sayer_units(path, "READY=1 STOPPING=1", service_extra="TimeoutStopSec=1\n")
        with harness.Usherd(units) as usherd:
            conn = connect_and_hear(usherd)
            usherd.wait_log(r"ready instance=say@\S+ .*via=notify")
            usherd.wait_log(r"timeout instance=say@\S+ socket=say.socket still stopping")
            usherd.wait_log(r"end instance=say@\S+ .*status=killed signal=Terminated")
            check("before-ready=yes" not in usherd.log_text(), "it had been ready")
            conn.close()


def test_shutdown_stops_an_instance_that_said_stopping_and_hangs():
    with harness.TempDir("usherd-sayer.") as tmp:
        path = os.path.join(tmp, "sayer.py")
        harness.write_file(path, SAYER)
        # TimeoutStopSec=infinity: nothing but usherd's shutdown ends its wait.
        units = sayer_units(path, "READY=1 STOPPING=1 stubborn",
                            service_extra="TimeoutStopSec=infinity\n")
        with harness.Usherd(units) as usherd:
            conn = connect_and_hear(usherd)
            usherd.wait_log(r"ready instance=say@\S+ .*via=notify")
            wait_until(lambda: any(i["state"] == "stopping"
                                   for i in instances(usherd)), 20,
                       "the instance shows as stopping")
            code = usherd.stop(timeout=20)
            check_eq(code, 0, "usherd's exit status")
            check("end instance=say@" in usherd.log_text(), "usherd stopped the instance")
            conn.close()


def test_status_lines_are_rate_limited_per_instance():
    with harness.TempDir("usherd-sayer.") as tmp:
        path = os.path.join(tmp, "sayer.py")
        harness.write_file(path, SAYER)
        units = sayer_units(path, "flood:100 READY=1")
        with harness.Usherd(units) as usherd:
            conn = connect_and_hear(usherd)
            usherd.wait_log(r"ready instance=say@\S+ .*via=notify")
            conn.close()
            usherd.wait_log(r"logging rate-limited: 90 more status lines suppressed")
            lines = [l for l in usherd.log_text().splitlines() if " status instance=say@" in l]
            check_eq(len(lines), 10, "STATUS= lines logged in full")


def test_per_connection_templates_resolve_users_once_not_per_connection():
    units = {
        "nss.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
        "nss@.service": "[Unit]\nDescription=connection %i\n[Service]\nUser=nobody\n"
                        "Group=nogroup\nExecStart=/bin/echo served %i\nStandardInput=socket\n",
        "byname.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
        "byname@.service": "[Service]\nUser=%i\nExecStart=/bin/echo hi\nStandardInput=socket\n",
    }
    with harness.Usherd(units) as usherd:
        port = usherd.port("nss.socket")
        with harness.TempDir("usherd-strace.") as tmp:
            trace = os.path.join(tmp, "trace")
            tracer = subprocess.Popen(["strace", "-qq", "-e", "trace=open,openat,connect", "-o",
                                       trace, "-p", str(usherd.proc.pid)],
                                      stderr=subprocess.PIPE, text=True)
            try:
                # strace stops the tracee to attach: a status answered after that went
                # through the traced loop.
                wait_until(lambda: _traced_by(usherd.proc.pid, tracer.pid), 20,
                           "strace attached")
                for _ in range(20):
                    with socket.create_connection(("127.0.0.1", port), timeout=20) as c:
                        check(c.makefile("rb").read().startswith(b"served "),
                              "the instance answered")
            finally:
                tracer.terminate()
                tracer.wait(timeout=20)
            with open(trace, encoding="utf-8", errors="replace") as f:
                calls = f.read()
        lookups = [l for l in calls.splitlines()
                   if "/etc/passwd" in l or "/etc/group" in l or "nscd" in l or "libnss" in l]
        check(not lookups, f"no NSS look-up on the connection path: {lookups[:3]}")
        check("served" not in calls, "sanity: the trace is of usherd, not its children")
        # A User= naming the connection (%i) could never name a user: the unit is refused
        # at load instead of running as root.
        check(re.search(r"byname@\.service:2: Invalid user/group name or numeric ID in User=%i\. Refusing",
                        usherd.log_text()), "User=%i is refused at load")
        check("byname.socket" not in [s["name"] for s in usherd.status()["sockets"]],
              "its socket is not loaded")


def test_children_stuck_before_execve_hold_only_their_own_socket_and_are_killed():
    stall_fs = os.path.join(harness.build_dir(), "tests", "helpers", "stall_fs")
    with harness.TempDir("usherd-stall.") as tmp:
        mnt = os.path.join(tmp, "mnt")
        os.mkdir(mnt)
        fs = subprocess.Popen([stall_fs, mnt], stdout=subprocess.PIPE, text=True)
        try:
            check_eq(fs.stdout.readline(), "mounted\n", "stall_fs serves")
            units = {
                "stuck.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
                "stuck@.service": f"[Service]\nExecStart=/bin/echo stuck\n"
                                  f"WorkingDirectory={mnt}/stall\nStandardInput=socket\n",
                "other.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
                "other@.service": "[Service]\nExecStart=/bin/echo other\nStandardInput=socket\n",
            }
            with harness.Usherd(units) as usherd:
                stuck_port = usherd.port("stuck.socket")
                # More clients than kMaxStarting: once 8 of this socket's children are stuck,
                # the rest wait in its accept queue.
                clients = [socket.create_connection(("127.0.0.1", stuck_port), timeout=20)
                           for _ in range(12)]
                status = wait_until(
                    lambda: (lambda st: st if usherd.socket_status("stuck.socket", st)["held"]
                             and st["launches_stalled"] >= 8 else None)(usherd.status()),
                    20, "stuck.socket held, with 8 stalled launches")
                check(not usherd.socket_status("other.socket", status)["held"],
                      "other.socket is not held")
                metrics = usherd.usherctl("metrics").stdout
                check('usherd_socket_held{socket="stuck.socket"} 1' in metrics,
                      "metrics show the held socket")
                check('usherd_socket_held{socket="other.socket"} 0' in metrics,
                      "metrics show the other socket free")
                check("(held: children still before execve)" in usherd.usherctl("status").stdout,
                      "usherctl status shows the held socket")
                # The other socket answers while the stuck children still hold theirs.
                with socket.create_connection(("127.0.0.1", usherd.port("other.socket")),
                                              timeout=3) as c:
                    c.settimeout(3)
                    check_eq(c.makefile("rb").readline(), b"other\n",
                             "another socket is served while children are stuck")
                # At the pre-exec deadline each stuck child is killed and counted, once.
                wait_until(lambda: usherd.socket_status("stuck.socket")["dropped"]
                           .get("spawn-failed", 0) >= 8, 30, "the stuck children counted")
                usherd.wait_log(r"spawn instance=stuck@\S+ .*failed: no execve \d+\.\ds after "
                                r"its launch .*killed")
                # These wait in the kernel for a file system that never answers, where even
                # SIGKILL waits (a hard NFS mount does the same): they end when it goes.
                fs.kill()
                fs.wait(timeout=20)
                subprocess.run(["umount", "-l", mnt], stderr=subprocess.DEVNULL, check=False)
                for c in clients:
                    c.close()
                usherd.wait_instances_gone("stuck.socket", timeout=30)
                status = usherd.status()
                check_eq(status["launches_stalled"], 0, "no stalled launch left")
                check(not usherd.socket_status("stuck.socket", status)["held"],
                      "stuck.socket is free again")
                check_eq(status["penalised_sources"], 0, "no source penalised for them")
                accepted = usherd.log_text().count("accept socket=stuck.socket ")
                check_eq(usherd.socket_status("stuck.socket", status)["dropped"]
                         .get("spawn-failed"), accepted,
                         "every launched child counted once as a failed spawn")
        finally:
            fs.kill()
            fs.wait()
            subprocess.run(["umount", "-l", mnt], stderr=subprocess.DEVNULL, check=False)


def test_a_runtime_directory_usherd_does_not_own_alone_stops_it_with_one_line():
    with harness.TempDir("usherd-rundir.") as tmp:
        units_dir = os.path.join(tmp, "units")
        os.mkdir(units_dir)
        for mode, owner, expected in ((0o755, 65534, r"owned by uid 65534, not by usherd"),
                                      (0o777, 0, r"writable by group or others \(mode 0777\)")):
            runtime = os.path.join(tmp, f"run-{mode:o}-{owner}")
            os.mkdir(runtime)
            os.chmod(runtime, mode)
            os.chown(runtime, owner, owner)
            result = harness.run([harness.usherd_binary(), "--units", units_dir,
                                  "--runtime-dir", runtime], check_rc=False, timeout=20)
            check_eq(result.returncode, 1, f"usherd's exit status with {runtime}")
            lines = [l for l in result.stderr.splitlines() if "runtime directory" in l]
            check_eq(len(lines), 1, "one line about the runtime directory")
            check(re.search(r"critical runtime directory: .*" + expected + r".*; not starting",
                            lines[0]), f"the line says why: {lines[0]}")
            check_eq(os.listdir(runtime), [], "nothing was created in it")


def test_a_state_line_naming_an_unrelated_process_adopts_and_signals_nothing():
    units = {"echo.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n"
                            "X-StartupTimeoutSec=1\n",
             "echo@.service": "[Service]\nType=notify\nExecStart=/bin/cat\n"
                              "StandardInput=socket\n"}
    # A root process that is not a session leader: what a planted line would point at.
    victim = subprocess.Popen(["sleep", "600"])
    try:
        with open(f"/proc/{victim.pid}/stat", encoding="utf-8") as f:
            start_time = f.read().rsplit(")", 1)[1].split()[19]
        with harness.Usherd(units) as usherd:
            usherd.stop()
            with open(os.path.join(usherd.runtime_dir, "state"), "a", encoding="utf-8") as f:
                f.write(f"+\t{victim.pid}\t{start_time}\t0\t0\techo.socket\techo@1.service\t"
                        "127.0.0.1:1\n")
            usherd.restart()
            usherd.wait_log(r"adopt instances=0 from ")
            check_eq(usherd.status()["instances"], [], "nothing adopted")
            mark = usherd.log_mark()
            # Past the startup timeout an adopted process would have had: a connection of its
            # own is timed out, and the victim is still there.
            with socket.create_connection(("127.0.0.1", usherd.port("echo.socket")),
                                          timeout=20):
                usherd.wait_log(r"end instance=echo@\S+ .*before-ready=yes", start_at=mark)
            check(victim.poll() is None, "the unrelated process was not signalled")
    finally:
        victim.kill()
        victim.wait()


def test_unix_clients_skip_ip_rules_and_are_limited_per_uid():
    name = f"usherd-test-{os.getpid()}-{time.monotonic_ns()}"
    units = {
        "local.socket": f"[Socket]\nListenStream=@{name}\nAccept=yes\nIPAddressDeny=any\n"
                        "MaxConnectionsPerSource=1\n",
        "local@.service": "[Service]\nExecStart=/bin/sh -c 'echo hi; exec cat'\n"
                          "StandardInput=socket\n",
    }

    def connect_as(uid):
        """A connection from a process of uid (abstract sockets have no permissions)."""
        parent, child = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            try:
                os.setgid(uid)
                os.setuid(uid)
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect("\0" + name)
                socket.send_fds(child, [b"x"], [c.fileno()])
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        _, fds, _, _ = socket.recv_fds(parent, 1, 1)
        parent.close()
        child.close()
        c = socket.socket(fileno=fds[0])
        c.settimeout(20)
        return c

    with harness.Usherd(units) as usherd:
        first = connect_as(0)
        check_eq(first.recv(3), b"hi\n", "a unix client is served despite IPAddressDeny=any")
        second = connect_as(0)
        check_eq(second.recv(3), b"", "a second connection of the same uid is over its limit")
        other = connect_as(65534)
        check_eq(other.recv(3), b"hi\n", "another uid has its own limit")
        dropped = usherd.socket_status("local.socket")["dropped"]
        check_eq(dropped, {"per-source-connections": 1}, "one drop, for the per-uid limit")
        for c in (first, second, other):
            c.close()


def _traced_by(pid, tracer_pid):
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        return f"TracerPid:\t{tracer_pid}\n" in f.read()


if __name__ == "__main__":
    harness.main(globals())
