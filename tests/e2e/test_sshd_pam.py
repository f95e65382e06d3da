#!/usr/bin/python3
"""The recommended OpenSSH readiness: a pam_exec line in the PAM *session* stack runs
`usherctl notify --ready --socket PATH` only after authentication and account checks
succeeded. Its parent is the `sshd -i` instance, whose pid usherctl puts in the
credentials, as systemd-notify does. The PAM service is chosen through sshd's argv[0]
(ExecStart=@/usr/sbin/sshd usherd-sshd-test ...) up to OpenSSH 9.x, and with PAMServiceName
from OpenSSH 10 on (which no longer reads it from argv[0]), so /etc/pam.d/sshd stays
untouched.
An unauthenticated client stays a startup; a login ends its startup with ready_via=notify.
"""
# ctest-resource-lock: usherdtest;run-sshd;pam-usherd-sshd-test

import os
import socket
import subprocess

import harness
from harness import check, check_eq
from test_sshd import SSHD, SshdSetup, check_sshd_config

PAM_SERVICE = "usherd-sshd-test"
PAM_FILE = f"/etc/pam.d/{PAM_SERVICE}"


def test_pam_session_notify_ends_the_startup_of_an_authenticated_login():
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/security/pam_exec.so"):
        harness.skip("pam_exec.so is not installed")
    with SshdSetup() as setup:
        with open(setup.config, encoding="utf-8") as f:
            config = f.read().replace("UsePAM no", "UsePAM yes")
        harness.write_file(setup.config, config)
        check_sshd_config(setup)
        knows_pam_service_name = subprocess.run(
            [SSHD, "-t", "-f", setup.config, "-o", f"PAMServiceName={PAM_SERVICE}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0
        if knows_pam_service_name:
            # The first occurrence of a keyword wins in sshd_config.
            harness.write_file(setup.config, f"PAMServiceName {PAM_SERVICE}\n" + config)
            check_sshd_config(setup)
        service = setup.units["ssh@.service"]
        service = service.replace(f"ExecStart=-{SSHD} -i", f"ExecStart=-@{SSHD} {PAM_SERVICE} -i")
        service = service.replace("[Service]\n", "[Service]\nType=notify\n")
        setup.units["ssh@.service"] = service
        try:
            with harness.Usherd(setup.units) as usherd:
                harness.write_file(PAM_FILE, f"""\
@include common-auth
@include common-account
@include common-session
session optional pam_exec.so quiet {harness.usherctl_binary()} notify --ready --socket {usherd.runtime_dir}/notify
""")
                port = usherd.port("ssh.socket")
                idle = socket.create_connection(("127.0.0.1", port), timeout=20)
                check(idle.recv(100).startswith(b"SSH-2.0-"), "banner")
                check_eq(usherd.status()["startups"]["current"], 1, "an idle client is a startup")

                mark = usherd.log_mark()
                session = subprocess.Popen(
                    ["ssh", "-p", str(port), *harness.ssh_client_options(port, setup.client_key),
                     f"{harness.TEST_USER}@127.0.0.1", "echo authenticated; read x"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True)
                try:
                    check_eq(session.stdout.readline().strip(), "authenticated", "login")
                    usherd.wait_log(r"ready instance=ssh@\S+ .*via=notify", start_at=mark,
                                    what="readiness through the PAM session helper")
                    status = usherd.status()
                    states = sorted((i["state"], i["ready_via"] or "-") for i in status["instances"])
                    check_eq(states, [("running", "notify"), ("starting", "-")],
                             "the login is running (notify), the idle client still starting")
                    check_eq(status["startups"]["current"], 1, "only the idle client is a startup")
                finally:
                    session.stdin.close()
                    session.wait(timeout=20)
                idle.close()
                usherd.wait_instances_gone("ssh.socket")
                check_eq(usherd.status()["startups"]["current"], 0, "no startups left")
        finally:
            if os.path.exists(PAM_FILE):
                os.unlink(PAM_FILE)


if __name__ == "__main__":
    harness.main(globals())
