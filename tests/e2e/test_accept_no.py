#!/usr/bin/python3
"""Accept=no services: one long-lived process takes usherd's listening sockets (LISTEN_FDS).

curl reaches a local HTTP server through systemd-socket-proxyd started on the first
connection; the proxy exits when idle (--exit-idle-time), and the next connection starts it
again, because usherd keeps its own copy of the listening socket.
"""

import http.server
import os
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


if __name__ == "__main__":
    harness.main(globals())
