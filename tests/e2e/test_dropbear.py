#!/usr/bin/python3
"""dropbear in inetd mode (`dropbear -i`) behind usherd, with an OpenSSH client.

dropbear reads only ~/.ssh/authorized_keys, so the test installs its client key there for
the test user (and puts back what was there before). Its host key is made with dropbearkey
in the test's directory. dropbear refuses stderr logging in inetd mode, so it logs to
syslog only; the test judges it by what the client sees and by usherd's status.
"""
# ctest-resource-lock: usherdtest


import harness
from harness import check, check_eq

DROPBEAR = "/usr/sbin/dropbear"


def test_pubkey_login_through_a_dropbear_i_instance():
    harness.require_root()
    harness.require_binaries(DROPBEAR, "dropbearkey", "ssh", "ssh-keygen")
    with harness.TempDir("usherd-dropbear.") as t:
        hostkey = f"{t}/dropbear_ed25519_host_key"
        harness.run(["dropbearkey", "-t", "ed25519", "-f", hostkey])
        harness.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{t}/clientkey"])
        with open(f"{t}/clientkey.pub", encoding="utf-8") as f:
            pubkey = f.read()
        units = {
            "dropbear.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
            "dropbear@.service": f"""\
[Unit]
Description=dropbear per-connection SSH server (test)

[Service]
# -s: no password logins; -w: no root logins; -r: this host key only.
ExecStart=-{DROPBEAR} -i -s -w -r {hostkey}
StandardInput=socket
StandardError=journal
""",
        }
        with harness.AuthorizedKey(pubkey), harness.Usherd(units) as usherd:
            port = usherd.port("dropbear.socket")
            proc = harness.run(["ssh", "-p", str(port),
                                *harness.ssh_client_options(port, f"{t}/clientkey"),
                                f"{harness.TEST_USER}@127.0.0.1",
                                "echo hello-dropbear; id -un"])
            check_eq(proc.stdout.splitlines(), ["hello-dropbear", harness.TEST_USER],
                     "command output through dropbear")
            # A key dropbear does not know is refused: the login really was key-checked.
            harness.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{t}/otherkey"])
            refused = harness.run(["ssh", "-p", str(port),
                                   *harness.ssh_client_options(port, f"{t}/otherkey"),
                                   f"{harness.TEST_USER}@127.0.0.1", "true"], check_rc=False)
            check(refused.returncode == 255 and "Permission denied" in refused.stderr,
                  f"an unknown key is refused: rc={refused.returncode} {refused.stderr!r}")
            status = usherd.wait_instances_gone("dropbear.socket")
            sock = usherd.socket_status("dropbear.socket", status)
            check_eq(sock.get("accepted"), 2, "connections accepted")
            check_eq(harness.total_dropped(sock), 0, "connections dropped")
            check_eq(status["startups"]["current"], 0, "startups still counted")
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")


if __name__ == "__main__":
    harness.main(globals())
