#!/usr/bin/python3
"""Accept=no services: one long-lived process takes usherd's listening sockets (LISTEN_FDS).

curl reaches a local HTTP server through systemd-socket-proxyd started on the first
connection; the proxy exits when idle (--exit-idle-time), and the next connection starts it
again, because usherd keeps its own copy of the listening socket. Also inetd's "wait" mode
(StandardInput=socket: the datagram socket itself on stdin), Restart= with its back-off and
RestartPreventExitStatus=, stopping: ExecStop= with $MAINPID, then KillMode=, and Type=oneshot:
its ExecStart= lines one after another, then ExecStartPost=, then the socket watched again.
A service that lets the sockets go is stopped even when it loses the first stop signal (as
sshd does when the signal arrives just before it re-executes itself).
"""

import http.server
import os
import select
import signal
import socket
import threading

import harness
from harness import check, check_eq

PROXYD = "/lib/systemd/systemd-socket-proxyd"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        body = b"through the proxy\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_curl_through_socket_proxyd_across_an_idle_exit():
    harness.require_binaries(PROXYD, "curl")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        backend = server.server_address[1]
        units = {
            "proxy.socket": "[Socket]\nListenStream=127.0.0.1:0\n",
            "proxy.service": f"[Service]\nExecStart={PROXYD} --exit-idle-time=1s 127.0.0.1:{backend}\n",
        }
        with harness.Usherd(units) as usherd:
            port = usherd.port("proxy.socket")
            url = f"http://127.0.0.1:{port}/"
            mark = usherd.log_mark()
            out = harness.run(["curl", "-sS", "--max-time", "10", url])
            check_eq(out.stdout, "through the proxy\n", "first request")
            usherd.wait_log(r"activate socket=proxy\.socket", start_at=mark, what="activation")
            usherd.wait_log(r"end instance=proxy\.service .*status=exited code=0", start_at=mark,
                            what="the proxy's idle exit")
            check_eq(usherd.socket_status("proxy.socket").get("service_state"), "idle",
                     "back to watching the socket")
            mark = usherd.log_mark()
            out = harness.run(["curl", "-sS", "--max-time", "10", url])
            check_eq(out.stdout, "through the proxy\n", "second request, after the idle exit")
            usherd.wait_log(r"activate socket=proxy\.socket", start_at=mark,
                            what="activation again")
    finally:
        server.shutdown()


USHERCTL = harness.usherctl_binary()

# A datagram service in inetd's wait mode: answers every datagram on the socket it finds on
# stdin in upper case, and exits after a second without one.
UDP_UPPER = ("import socket; s = socket.socket(fileno=0); s.settimeout(1.0)\n"
             "while True:\n"
             "    try: data, peer = s.recvfrom(2048)\n"
             "    except TimeoutError: break\n"
             "    s.sendto(data.upper(), peer)\n")


def udp_ask(port, text):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(20)
        c.sendto(text, ("127.0.0.1", port))
        return c.recvfrom(2048)[0]


def test_wait_mode_hands_the_datagram_socket_on_stdin_and_watches_it_again():
    script_dir = harness.TempDir("usherd-udp.")
    with script_dir:
        script = os.path.join(script_dir.path, "upper.py")
        harness.write_file(script, UDP_UPPER)
        units = {
            "upper.socket": "[Socket]\nListenDatagram=127.0.0.1:0\n",
            "upper.service": f"[Service]\nExecStart=/usr/bin/python3 {script}\n"
                             "StandardInput=socket\nStandardOutput=journal\n",
        }
        with harness.Usherd(units) as usherd:
            port = usherd.port("upper.socket")
            mark = usherd.log_mark()
            check_eq(udp_ask(port, b"first"), b"FIRST", "reply from the started service")
            usherd.wait_log(r"end instance=upper\.service .*status=exited code=0", start_at=mark,
                            what="the service's exit when idle")
            mark = usherd.log_mark()
            check_eq(udp_ask(port, b"second"), b"SECOND", "reply after the service exited")
            usherd.wait_log(r"activate socket=upper\.socket", start_at=mark,
                            what="the second datagram started it again")
            sock = usherd.socket_status("upper.socket")
            check_eq(harness.total_dropped(sock), 0, "nothing dropped")


def test_restart_backs_off_and_restart_prevent_exit_status_stops_it():
    units = {
        "flaky.socket": "[Socket]\nListenStream=127.0.0.1:0\n",
        "flaky.service": "[Service]\nExecStart=/bin/sh -c 'exit 3'\nRestart=always\n"
                         "RestartSec=50ms\n",
        "steady.socket": "[Socket]\nListenStream=127.0.0.1:0\n",
        "steady.service": "[Service]\nExecStart=/bin/sh -c 'exit 3'\nRestart=on-failure\n"
                          "RestartSec=50ms\nRestartPreventExitStatus=3\n",
    }
    with harness.Usherd(units) as usherd:
        socket.create_connection(("127.0.0.1", usherd.port("flaky.socket")), timeout=10).close()
        delays = []
        for attempt in (1, 2, 3, 4):
            m = usherd.wait_log(rf"restart service=flaky\.service in ([0-9.]+)s \(attempt {attempt}\)",
                                what=f"restart attempt {attempt}")
            delays.append(float(m.group(1)))
        check_eq(delays, [0.05, 0.1, 0.2, 0.4], "RestartSec=, doubling on consecutive failures")
        check(usherd.alive(), "usherd keeps going")

        mark = usherd.log_mark()
        socket.create_connection(("127.0.0.1", usherd.port("steady.socket")), timeout=10).close()
        usherd.wait_log(r"end instance=steady\.service .*status=exited code=3", start_at=mark,
                        what="the service's exit 3")
        state = usherd.socket_status("steady.socket").get("service_state")
        check_eq(state, "idle", "RestartPreventExitStatus=3: back to watching, no restart")
        # The connection is still pending (the service never took it): the socket starts the
        # service again, but after a back-off, never in a tight loop of activations.
        delays = []
        for attempt in (1, 2, 3):
            m = usherd.wait_log(rf"watch socket=steady\.socket again in ([0-9.]+)s "
                                rf"\(service=steady\.service failed {attempt} time",
                                start_at=mark, what=f"back-off {attempt}")
            delays.append(float(m.group(1)))
        check_eq(delays, [0.05, 0.1, 0.2], "the activations back off")
        check(not any("restart service=steady" in line
                      for line in usherd.log_text().splitlines()[mark:]),
              "no restart was scheduled for exit status 3")


def test_a_failing_exec_start_post_stops_the_service_and_a_dash_ignores_it():
    units = {
        "post.socket": "[Socket]\nListenStream=127.0.0.1:0\n",
        "post.service": "[Service]\nExecStart=/bin/sleep 1000\n"
                        "ExecStartPost=-/bin/false\nExecStartPost=/bin/false\nRestartSec=2min\n",
    }
    with harness.Usherd(units) as usherd:
        conn = socket.create_connection(("127.0.0.1", usherd.port("post.socket")), timeout=10)
        usherd.wait_log(r"end instance=post\.service:ExecStartPost\[0\] .*code=1",
                        what="the first ExecStartPost= (ignored)")
        usherd.wait_log(r"failed service=post\.service ExecStartPost= exited with 1: stopping it",
                        what="the second ExecStartPost= failing the start")
        usherd.wait_log(r"end instance=post\.service pid=\d+ status=killed signal=Terminated",
                        what="the main process stopped")
        usherd.wait_log(r"watch socket=post\.socket again in 120\.000s", what="a failed start")
        conn.close()


def wait_gone(pid, timeout=20.0):
    """True once the process has ended (a pidfd polls readable), False at the deadline."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def running(pid):
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def stop_units(tmp, kill_mode):
    return {
        "svc.socket": "[Socket]\nListenStream=127.0.0.1:0\n",
        "svc.service": f"""\
[Service]
Type=notify
ExecStart=/bin/sh -c 'sleep 1000 & echo $! > {tmp}/child; {USHERCTL} notify --ready; wait'
ExecStop=/bin/sh -c 'echo $MAINPID > {tmp}/stopped'
KillMode={kill_mode}
TimeoutStopSec=10s
""",
    }


def run_and_stop(kill_mode):
    """Starts the service, stops usherd; returns (main pid, the child's pid, ExecStop's $MAINPID)."""
    tmp = harness.TempDir("usherd-stop.")
    with tmp:
        with harness.Usherd(stop_units(tmp.path, kill_mode)) as usherd:
            mark = usherd.log_mark()
            socket.create_connection(("127.0.0.1", usherd.port("svc.socket")), timeout=10).close()
            usherd.wait_log(r"ready instance=svc\.service .*via=notify", start_at=mark,
                            what="the service's READY=1")
            main_pid = next(i["pid"] for i in usherd.status()["instances"]
                            if i.get("socket") == "svc.socket")
            with open(f"{tmp.path}/child", encoding="utf-8") as f:
                child = int(f.read())
            check_eq(usherd.stop(), 0, "usherd exit code")
            usherd.wait_log(r"end instance=svc\.service:ExecStop .*code=0", start_at=mark,
                            what="ExecStop= ran")
            with open(f"{tmp.path}/stopped", encoding="utf-8") as f:
                stopped = int(f.read())
        return main_pid, child, stopped


def test_stop_runs_exec_stop_then_kill_mode_process_leaves_the_child():
    main_pid, child, stopped = run_and_stop("process")
    try:
        check_eq(stopped, main_pid, "ExecStop= saw $MAINPID")
        # usherd has exited: whatever it was going to signal, it has.
        check(running(child), "KillMode=process: the main's child still runs")
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_stop_with_kill_mode_control_group_ends_the_child_too():
    main_pid, child, stopped = run_and_stop("control-group")
    check_eq(stopped, main_pid, "ExecStop= saw $MAINPID")
    check(wait_gone(child), "KillMode=control-group: the main's child was stopped too")


COUNT_SIGNALS = """\
import os, signal, socket, sys
sig = signal.SIGRTMIN + 2  # real-time: each one sent is queued, none merges with another
signal.pthread_sigmask(signal.SIG_BLOCK, [sig, signal.SIGCONT])
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.connect(os.environ["NOTIFY_SOCKET"])
notify.send(b"READY=1")
# usherd's stop sends SIGCONT after every KillSignal= of that stop: once it is here, each
# KillSignal= sent is pending too.
signal.sigwait([signal.SIGCONT])
count = 0
while signal.sigtimedwait([sig], 0) is not None:
    count += 1
with open(sys.argv[1], "w") as f:
    f.write(str(count))
"""


def test_kill_mode_control_group_signals_the_main_process_once():
    tmp = harness.TempDir("usherd-once.")
    with tmp:
        script = os.path.join(tmp.path, "count.py")
        result = os.path.join(tmp.path, "count")
        harness.write_file(script, COUNT_SIGNALS)
        units = {
            "once.socket": "[Socket]\nListenStream=127.0.0.1:0\n",
            "once.service": f"[Service]\nType=notify\nExecStart=/usr/bin/python3 {script} {result}\n"
                            "KillMode=control-group\nKillSignal=SIGRTMIN+2\n",
        }
        with harness.Usherd(units) as usherd:
            mark = usherd.log_mark()
            socket.create_connection(("127.0.0.1", usherd.port("once.socket")), timeout=10).close()
            usherd.wait_log(r"ready instance=once\.service .*via=notify", start_at=mark,
                            what="the service's READY=1")
            # The stop signals the service's process group, which the main process leads.
            check_eq(usherd.stop(), 0, "usherd exit code")
        with open(result, encoding="utf-8") as f:
            check_eq(f.read(), "1", "KillSignal= deliveries to the main process")


ONESHOT_SERVE = """\
import socket, sys
listener = socket.socket(fileno=3)
conn, _ = listener.accept()
conn.sendall(b"served\\n")
conn.close()
with open(sys.argv[1], "a") as f:
    f.write("serve\\n")
"""


def test_oneshot_runs_every_exec_start_in_order_then_exec_start_post_then_watches_again():
    tmp = harness.TempDir("usherd-oneshot.")
    with tmp:
        order = os.path.join(tmp.path, "order")
        never = os.path.join(tmp.path, "never")
        script = os.path.join(tmp.path, "serve.py")
        harness.write_file(script, ONESHOT_SERVE)
        units = {
            "job.socket": "[Socket]\nListenStream=127.0.0.1:0\n",
            "job.service": "[Service]\nType=oneshot\n"
                           f"ExecStart=/bin/sh -c 'echo first >> {order}'\n"
                           "ExecStart=-/bin/false\n"
                           f"ExecStart=/usr/bin/python3 {script} {order}\n"
                           f"ExecStartPost=/bin/sh -c 'echo post >> {order}'\n",
            "bad.socket": "[Socket]\nListenStream=127.0.0.1:0\n",
            "bad.service": "[Service]\nType=oneshot\nExecStart=/bin/false\n"
                           f"ExecStart=/bin/sh -c 'echo ran >> {never}'\nRestartSec=1min\n",
        }
        with harness.Usherd(units) as usherd:
            port = usherd.port("job.socket")
            for round_ in (1, 2):
                mark = usherd.log_mark()
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.settimeout(10)
                    check_eq(s.recv(64), b"served\n", f"round {round_}: the third ExecStart= "
                                                       "took the connection")
                usherd.wait_log(r"finished service=job\.service socket=job\.socket",
                                start_at=mark, what=f"round {round_}: the oneshot finished")
                with open(order) as f:
                    check_eq(f.read(), "first\nserve\npost\n" * round_,
                             f"round {round_}: ExecStart= in order (a '-' failure passed over), "
                             "then ExecStartPost=")
                check_eq(usherd.socket_status("job.socket").get("service_state"), "idle",
                         f"round {round_}: the socket is watched again")

            mark = usherd.log_mark()
            socket.create_connection(("127.0.0.1", usherd.port("bad.socket")), timeout=10).close()
            usherd.wait_log(r"watch socket=bad\.socket again in", start_at=mark,
                            what="the failed oneshot backing off")
            check(not os.path.exists(never), "a failing ExecStart= ends the oneshot there")


LETS_GO = """\
import os, signal, sys, time
terms = []
def on_usr1(sig, frame):
    os.close(3)  # lets usherd's listening socket go, as sshd does before re-executing
def on_term(sig, frame):
    terms.append(sig)
    if len(terms) > 1:
        sys.exit(0)
    # The first SIGTERM is lost, as when it reaches sshd's old image just before its execve.
signal.signal(signal.SIGUSR1, on_usr1)
signal.signal(signal.SIGTERM, on_term)
import socket
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.connect(os.environ["NOTIFY_SOCKET"])
notify.send(b"READY=1")
while True:
    time.sleep(1)
"""


def test_a_service_that_lets_the_sockets_go_is_stopped_even_if_it_loses_the_first_signal():
    tmp = harness.TempDir("usherd-letgo.")
    with tmp:
        script = os.path.join(tmp.path, "letgo.py")
        harness.write_file(script, LETS_GO)
        units = {
            "letgo.socket": "[Socket]\nListenStream=127.0.0.1:0\n",
            "letgo.service": f"[Service]\nType=notify\nExecStart=/usr/bin/python3 {script}\n"
                             # ends once the service has closed the socket (fd 3)
                             "ExecReload=/bin/sh -c 'kill -USR1 $MAINPID; "
                             "while [ -e /proc/$MAINPID/fd/3 ]; do sleep 0.05; done'\n",
        }
        with harness.Usherd(units) as usherd:
            mark = usherd.log_mark()
            socket.create_connection(("127.0.0.1", usherd.port("letgo.socket")), timeout=10).close()
            usherd.wait_log(r"started service=letgo\.service", start_at=mark, what="the service")
            mark = usherd.log_mark()
            usherd.usherctl("reload")
            usherd.wait_log(r"service=letgo\.service pid=\d+ no longer holds the listening "
                            r"sockets", start_at=mark, what="the sockets let go")
            usherd.wait_log(r"stop service=letgo\.service pid=\d+ still running: Terminated again",
                            start_at=mark, what="the stop signal sent once more")
            usherd.wait_log(r"end instance=letgo\.service .*status=exited code=0", start_at=mark,
                            timeout=10, what="the service stopped by the second signal")
            # The connection it never accepted is still queued: it starts the service again,
            # with the sockets.
            usherd.wait_log(r"activate socket=letgo\.socket", start_at=mark,
                            what="the queued connection starting it again")


if __name__ == "__main__":
    harness.main(globals())
