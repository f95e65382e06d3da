#!/usr/bin/python3
"""What an operator sees and does: usherctl's commands, the metrics exposition (checked by
a real Prometheus parser), the process title, the SIGUSR1 dump, error replies on the control
socket, sd_notify to a service manager, and reloads that keep listeners (and so refuse no
connection) while a client loops across them."""

import json
import os
import signal
import socket
import threading
import time

import harness
import loadkit
from harness import check, check_eq


def units(port_line="ListenStream=127.0.0.1:0"):
    return {
        "echo.socket": f"[Socket]\n{port_line}\nAccept=yes\n",
        "echo@.service": "[Service]\nExecStart=/bin/echo hello\nStandardInput=socket\n",
    }


def fetch(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        data = b""
        while True:
            chunk = s.recv(100)
            if not chunk:
                return data
            data += chunk


def test_usherctl_commands_metrics_and_title():
    with harness.Usherd(units()) as usherd:
        port = usherd.port("echo.socket")
        check_eq(fetch(port), b"hello\n", "instance answer")
        usherd.wait_instances_gone("echo.socket")

        status = usherd.status()
        for key in ("version", "startups", "sockets", "instances"):
            check(key in status, f"status has {key}")
        check_eq(status["version"], 1, "status version")
        for key in ("current", "peak", "start", "rate", "full"):
            check(key in status["startups"], f"startups has {key}")
        sock = status["sockets"][0]
        for key in ("name", "listen", "accept", "accepted", "admitted", "dropped", "startups",
                    "instances"):
            check(key in sock, f"socket entry has {key}")
        check_eq(sock["admitted"], 1, "admitted")

        text = usherd.usherctl("status").stdout
        check("startups 0 of 10:30:100" in text, f"human status shows the budget:\n{text}")
        check("echo.socket" in text, "human status lists the socket")
        listing = json.loads(usherd.usherctl("list", "--json").stdout)
        check_eq(listing["instances"], [], "no instances left")
        check("0 instances" in usherd.usherctl("list").stdout, "human list")

        exposition = usherd.usherctl("metrics").stdout
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            harness.skip("python3-prometheus-client is not installed")
        families = {f.name: f for f in text_string_to_metric_families(exposition)}
        for name in ("usherd_startups", "usherd_startups_peak", "usherd_startups_limit",
                     "usherd_connections", "usherd_drops", "usherd_instances",
                     "usherd_startup_duration_seconds", "usherd_startup_timeouts",
                     "usherd_spawn_failures", "usherd_spawn_duration_seconds",
                     "usherd_penalised_sources", "usherd_notify_rejected"):
            check(name in families, f"metric family {name} parsed (have {sorted(families)})")
        admitted = [s.value for s in families["usherd_connections"].samples
                    if s.labels.get("result") == "admitted" and s.name.endswith("_total")]
        check_eq(admitted, [1.0], "usherd_connections_total{result=admitted}")
        spawn_count = [s.value for s in families["usherd_spawn_duration_seconds"].samples
                       if s.name.endswith("_count")]
        check_eq(spawn_count, [1.0], "spawn duration observations")

        # The title is rewritten at most every 100 ms: the instance's end shows within that.
        deadline = time.monotonic() + 5
        while True:
            with open(f"/proc/{usherd.proc.pid}/cmdline", "rb") as f:
                title = f.read().split(b"\0")[0].decode()
            if title.startswith("usherd: 0 of 10:30:100 startups, 0 instances") or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.02)
        check(title.startswith("usherd: 0 of 10:30:100 startups, 0 instances"), f"title {title!r}")

        mark = usherd.log_mark()
        os.kill(usherd.proc.pid, signal.SIGUSR1)
        usherd.wait_log(r"usherd: startups 0 of 10:30:100", start_at=mark, what="SIGUSR1 dump")

        missing = usherd.usherctl("stop", "nope@1.service", check_rc=False)
        check_eq(missing.returncode, 1, "stop of an unknown instance fails")
        check("no instance" in missing.stderr, "and says why")
        usage = usherd.usherctl("bogus", check_rc=False)
        check_eq(usage.returncode, 2, "usage errors exit 2")


def test_control_socket_answers_bad_requests_with_errors():
    with harness.Usherd(units()) as usherd:
        path = os.path.join(usherd.runtime_dir, "control")
        check_eq(os.stat(path).st_mode & 0o777, 0o600, "control socket mode")
        for body in (b"garbage", b"{\"version\":1}", b"{\"version\":9,\"command\":\"status\"}",
                     b"\x00\xff" * 100, b"{\"version\":1,\"command\":\"frobnicate\"}"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.connect(path)
                s.sendall(body)
                s.shutdown(socket.SHUT_WR)
                answer = json.loads(s.makefile().read())
            check_eq(answer["ok"], False, f"answer to {body[:20]!r}")
            check(answer["error"], "with an error text")
        # Oversized: answered, not read forever.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(path)
            try:
                s.sendall(b" " * (200 * 1024))
            except OSError:
                pass
            answer = json.loads(s.makefile().read())
        check_eq(answer["error"], "request too large", "oversized request")
        check(usherd.status()["version"] == 1, "the daemon still answers")


def test_reload_keeps_listeners_and_refuses_no_connection():
    with harness.Usherd(units()) as usherd:
        port = usherd.port("echo.socket")
        failures, done, count = [], threading.Event(), [0]

        def client():
            while not done.is_set():
                try:
                    if fetch(port) != b"hello\n":
                        failures.append("bad answer")
                except OSError as e:
                    failures.append(str(e))
                count[0] += 1

        t = threading.Thread(target=client)
        t.start()
        try:
            for i in range(3):
                out = usherd.usherctl("reload").stdout
                check("sockets loaded" in out, f"reload report: {out}")
                mark = usherd.log_mark()
                os.kill(usherd.proc.pid, signal.SIGHUP)
                usherd.wait_log(r"reload done", start_at=mark, what="SIGHUP reload")
        finally:
            done.set()
            t.join(30)
        check_eq(failures, [], f"connections refused or broken during reloads ({count[0]} made)")
        check_eq(usherd.port("echo.socket"), port, "the listener kept its address")

        # A bad usherd.conf keeps the whole previous configuration.
        harness.write_file(usherd.config_path, "[Policy]\nMaxStartups=banana\n")
        bad = usherd.usherctl("reload", check_rc=False)
        check_eq(bad.returncode, 1, "a bad reload is refused")
        check("previous configuration" in bad.stderr, f"and says so: {bad.stderr}")
        check_eq(fetch(port), b"hello\n", "the old configuration still serves")


def test_a_unit_that_fails_on_reload_keeps_its_previous_version():
    with harness.Usherd(units()) as usherd:
        port = usherd.port("echo.socket")
        service = os.path.join(usherd.units_dir, "echo@.service")
        harness.write_file(service, "[Service]\nStandardInput=socket\n")  # no ExecStart=
        extra = os.path.join(usherd.units_dir, "more.socket")
        harness.write_file(extra, "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\nService=echo@.service\n")
        out = usherd.usherctl("reload", check_rc=False)
        check_eq(fetch(port), b"hello\n", "the previous echo units still serve after the bad reload")
        names = [s["name"] for s in usherd.status()["sockets"]]
        check("echo.socket" in names, f"echo.socket kept ({names}; reload said {out.stdout}{out.stderr})")
        usherd.wait_log(r"echo@\.service", what="the failing unit reported")


def test_sd_notify_reaches_the_service_manager():
    with harness.TempDir("usherd-notify.") as t:
        path = os.path.join(t, "notify")
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(path)
        receiver.settimeout(20)
        os.environ["NOTIFY_SOCKET"] = path
        try:
            with harness.Usherd(units()):
                messages = []
                while not any("READY=1" in m for m in messages):
                    messages.append(receiver.recv(4096).decode())
                while not any("STATUS=" in m for m in messages):
                    messages.append(receiver.recv(4096).decode())
                check(any("STATUS=0 of 10:30:100 startups" in m for m in messages),
                      f"STATUS carries the startup line: {messages}")
        finally:
            del os.environ["NOTIFY_SOCKET"]
            receiver.close()


def test_http_metrics_and_stopping_one_instance():
    held = {
        "hold.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
        "hold@.service": "[Service]\nExecStart=/bin/sh -c 'echo hi; exec sleep 60'\n"
                         "StandardInput=socket\n",
    }
    config = "[Policy]\n[Metrics]\nListenStream=127.0.0.1:0\n"
    with harness.Usherd(held, config=config) as usherd:
        address = usherd.status()["metrics_listen"]
        host, _, port = address.rpartition(":")
        out = harness.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{port}/metrics"])
        check("usherd_startups 0" in out.stdout, "HTTP /metrics serves the exposition")
        missing = harness.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                               "--max-time", "10", f"http://127.0.0.1:{port}/other"])
        check_eq(missing.stdout, "404", "other paths are not found")

        s = socket.create_connection(("127.0.0.1", usherd.port("hold.socket")), timeout=10)
        check_eq(s.recv(3), b"hi\n", "instance answers")
        instance = usherd.status()["instances"][0]["id"]
        out = usherd.usherctl("stop", instance).stdout
        check(instance in out, "usherctl stop names the instance")
        check_eq(s.recv(10), b"", "the stopped instance's connection is closed")
        s.close()
        usherd.wait_log(r"end instance=hold@.* status=killed signal=Terminated",
                        what="the instance ended by SIGTERM")


def test_http_metrics_serves_at_most_sixteen_sessions_at_once():
    config = "[Policy]\n[Metrics]\nListenStream=127.0.0.1:0\n"
    with harness.Usherd({}, config=config) as usherd:
        port = int(usherd.status()["metrics_listen"].rpartition(":")[2])
        pid = usherd.proc.pid
        baseline = loadkit.fd_count(pid)
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
        try:
            # Sixteen sessions are taken; the rest wait in the kernel's backlog, holding no fd
            # of usherd's.
            loadkit.wait_until(lambda: loadkit.fd_count(pid) == baseline + 16, 20,
                               "sixteen idle sessions taken")
            check_eq(usherd.status()["startups"]["current"], 0, "the control socket answers")
            check_eq(loadkit.fd_count(pid), baseline + 16, "no more than sixteen taken")
        finally:
            for s in idle:
                s.close()
        out = harness.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{port}/metrics"])
        check("usherd_startups 0" in out.stdout, "a scrape is served once they have gone")
        loadkit.wait_until(lambda: loadkit.fd_count(pid) == baseline, 20,
                           "usherd's fds back to their baseline")


class ActivatedUsherd(harness.Usherd):
    """usherd started by systemd-socket-activate, which binds the port and execs usherd on
    the first connection with the socket in LISTEN_FDS."""

    def __init__(self, units_, port):
        super().__init__(units_)
        self.activation_port = port
        self.first = None

    def argv(self):
        return ["/usr/bin/systemd-socket-activate", "-l", f"127.0.0.1:{self.activation_port}",
                "--fdname=echo.socket"] + super().argv()

    def before_start_line(self):
        self.wait_log(r"Listening on 127\.0\.0\.1:", what="systemd-socket-activate listening")
        # The first connection makes systemd-socket-activate exec usherd.
        self.first = socket.create_connection(("127.0.0.1", self.activation_port), timeout=20)


def test_sockets_passed_by_a_service_manager_are_adopted():
    harness.require_binaries("/usr/bin/systemd-socket-activate")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ActivatedUsherd(units(f"ListenStream=127.0.0.1:{port}"), port) as usherd:
        usherd.wait_log(r"adopt listeners=1 passed by the service manager", what="adoption line")
        check_eq(usherd.port("echo.socket"), port, "usherd serves the passed socket")
        data = b""
        while True:
            chunk = usherd.first.recv(100)
            if not chunk:
                break
            data += chunk
        usherd.first.close()
        check_eq(data, b"hello\n", "the connection that started usherd is served")
        check_eq(fetch(port), b"hello\n", "and the next one")
        lines = [l for l in usherd.log_text().splitlines() if "listen socket=echo.socket" in l]
        check_eq(len(lines), 1, f"one listen line for echo.socket: {lines}")
        check("from=service-manager" in lines[0], f"usherd bound nothing itself: {lines}")


if __name__ == "__main__":
    harness.main(globals())
