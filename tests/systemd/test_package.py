#!/usr/bin/python3
"""The Debian package on a booted Debian 13 (or 12: `make test-systemd12`), as an admin uses it.

Runs on the host inside scripts/systemd-bed.sh (`make test-systemd`), every command inside
the container through `nsenter -t PID1 -a` (see test_usherd_service.py). The package is the
one built in the root by scripts/package.sh (build/package/usherd_*.deb of the copy of the
checkout; systemd-bed.sh builds it when it is missing or older than the sources).

Shown, in order, with the container's policy-rc.d set aside while apt runs (it is there so
that package installs never start daemons; here starting and stopping is what is tested):
- `apt-get install ./usherd_*.deb` enables and starts usherd.service; it is active with no
  unit, and `systemctl status usherd` shows its startup line and its STATUS= text;
- the admin stops Debian's sshd (ssh.service and ssh.socket: port 22), puts Debian 13's own
  per-connection pair in /etc/usherd/units: ssh.socket as Debian ships it with Accept=yes
  (named sshd.socket, so that its template is Debian's sshd@.service, copied unchanged; on
  Debian 12, which ships no template, the classic `sshd -i` one) and
  runs `systemctl reload usherd`; the reload is logged, and a public-key login on port 22
  works through usherd, as an instance sshd@…service;
- `apt-get purge usherd` stops usherd and leaves, of everything named usherd, only the admin's
  two units (and their directories).
The test puts back what it changed: the units, the test user, ssh.service.

Standard library only; run with Debian's /usr/bin/python3.
"""

import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_usherd_service as bed  # noqa: E402  (inside(), shell(), JournalFollower, pid1())
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

UNIT = "usherd.service"
USER = "pkglogin"  # not named usherd: the purge check looks for that name
ADMIN_UNITS = ["/etc/usherd/units/sshd.socket", "/etc/usherd/units/sshd@.service"]
# Everything named usherd and all of /etc/usherd, outside the kernel's file systems, the
# checkout, /tmp and man-db's cache (see tests/package/check-installed.sh).
FIND_USHERD = ("{ find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /tmp "
               f"-o -path {bed.CHECKOUT} -o -path /var/cache/man \\) -prune -o "
               "-name '*usherd*' -print; [ ! -d /etc/usherd ] || find /etc/usherd; } | sort -u")


def package_path():
    root = os.environ.get("USHERD_SYSTEMD_ROOT", "/nonexistent")
    debs = sorted(glob.glob(os.path.join(root, bed.CHECKOUT.lstrip("/"), "build", "package",
                                         "usherd_*.deb")), key=os.path.getmtime)
    check(debs, "the package is built in the root (scripts/systemd-bed.sh builds it)")
    return os.path.join(bed.CHECKOUT, "build", "package", os.path.basename(debs[-1]))


def apt(*args):
    """apt-get inside, with policy-rc.d set aside (so that the maintainer scripts start and
    stop usherd as on a server). The container has no network, and needs none: what usherd
    depends on is in the root already. (apt's --no-download refuses a local .deb.)"""
    return bed.shell(f"""
        mv /usr/sbin/policy-rc.d /usr/sbin/policy-rc.d.usherd-test
        trap 'mv /usr/sbin/policy-rc.d.usherd-test /usr/sbin/policy-rc.d' EXIT
        DEBIAN_FRONTEND=noninteractive apt-get -y -q {' '.join(args)}
    """, timeout=180)


def cleanup():
    bed.inside("sh", "-c", "[ ! -e /usr/sbin/policy-rc.d.usherd-test ] || "
               "mv /usr/sbin/policy-rc.d.usherd-test /usr/sbin/policy-rc.d", check_rc=False)
    if bed.inside("dpkg-query", "-W", "usherd", check_rc=False).returncode == 0:
        bed.inside("env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "--purge", "usherd",
                   check_rc=False, timeout=120)
    bed.inside("systemctl", "stop", UNIT, check_rc=False)
    bed.inside("systemctl", "reset-failed", UNIT, check_rc=False)
    bed.inside("rm", "-rf", "/etc/usherd", "/run/usherd", check_rc=False)
    bed.inside("userdel", "-r", USER, check_rc=False)
    bed.inside("systemctl", "daemon-reload", check_rc=False)
    bed.inside("systemctl", "start", "ssh.service", check_rc=False)


def test_the_package_installs_serves_debian_ssh_units_and_purges():
    bed.pid1()
    deb = package_path()
    cleanup()  # what an interrupted run may have left
    before = set(bed.shell(FIND_USHERD).stdout.split())
    try:
        apt("install", deb)
        check_eq(bed.inside("systemctl", "is-enabled", UNIT, check_rc=False).stdout.strip(),
                 "enabled", "usherd.service after apt-get install")
        check_eq(bed.inside("systemctl", "is-active", UNIT, check_rc=False).stdout.strip(),
                 "active", "usherd.service started by the package")
        check_eq(bed.inside("systemctl", "is-enabled", "usherd.socket",
                            check_rc=False).stdout.strip(), "disabled", "usherd.socket")
        status = bed.inside("systemctl", "status", "--no-pager", "--lines=20", UNIT,
                            check_rc=False).stdout
        check("start 0 sockets loaded, 0 failed" in status,
              f"systemctl status shows the startup line:\n{status}")
        check("Status: \"0 of 10:30:100 startups, 0 instances\"" in status,
              f"systemctl status shows usherd's STATUS=:\n{status}")
        print("systemctl status usherd:\n" + "\n".join(
            l for l in status.splitlines() if "Status:" in l or " start " in l))

        # The admin replaces sshd's own listener with Debian's per-connection units.
        bed.inside("systemctl", "stop", "ssh.socket", "ssh.service", check_rc=False)
        # Debian 13 ships the per-connection template (sshd@.service); on Debian 12 the admin
        # writes the classic one: sshd -i on the connection.
        bed.shell(f"""
            sed 's/^Accept=no$/Accept=yes/' /usr/lib/systemd/system/ssh.socket \\
                >/etc/usherd/units/sshd.socket
            grep -qx 'Accept=yes' /etc/usherd/units/sshd.socket
            if [ -e /usr/lib/systemd/system/sshd@.service ]; then
                cp /usr/lib/systemd/system/sshd@.service /etc/usherd/units/
            else
                printf '%s\\n' '[Unit]' 'Description=OpenBSD Secure Shell server per-connection daemon' \\
                    '[Service]' 'ExecStart=-/usr/sbin/sshd -i' 'StandardInput=socket' \\
                    'RuntimeDirectory=sshd' 'RuntimeDirectoryMode=0755' \\
                    >/etc/usherd/units/sshd@.service
            fi
            id {USER} >/dev/null 2>&1 || useradd -m -s /bin/sh {USER}
            install -d -m 0700 -o {USER} -g {USER} /home/{USER}/.ssh
            rm -f /tmp/usherd-pkg-key /tmp/usherd-pkg-key.pub
            ssh-keygen -q -t ed25519 -N '' -f /tmp/usherd-pkg-key
            install -m 0600 -o {USER} -g {USER} /tmp/usherd-pkg-key.pub \\
                /home/{USER}/.ssh/authorized_keys
        """)
        journal = bed.JournalFollower(UNIT)
        try:
            bed.inside("systemctl", "reload", UNIT, timeout=60)
            record = journal.wait(lambda r: str(r.get("MESSAGE", "")).startswith("reload "),
                                  30, "usherd's reload line")
            check("added sshd.socket" in record["MESSAGE"], f"the reload: {record['MESSAGE']}")
            login = bed.inside(
                "ssh", "-i", "/tmp/usherd-pkg-key", "-p", "22", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "ConnectTimeout=20", f"{USER}@127.0.0.1", "echo usherd-login-$(id -un)",
                check_rc=False, timeout=60)
            check_eq(login.stdout.strip(), f"usherd-login-{USER}",
                     f"pubkey login through usherd (stderr: {login.stderr.strip()})")
            accepted = journal.wait(
                lambda r: str(r.get("INSTANCE", "")).startswith("sshd@")
                and r.get("SOCKET") == "sshd.socket", 30, "the login's instance")
            print(f"login through usherd: {accepted.get('MESSAGE')}")
        finally:
            journal.close()

        apt("purge", "usherd")
        check_eq(bed.inside("systemctl", "is-active", UNIT, check_rc=False).stdout.strip(),
                 "inactive", "usherd.service after apt-get purge")
        check(bed.inside("test", "-e", "/run/usherd", check_rc=False).returncode != 0,
              "apt-get purge removed /run/usherd")
        left = set(bed.shell(FIND_USHERD).stdout.split()) - before
        check_eq(sorted(left), sorted(["/etc/usherd", "/etc/usherd/units"] + ADMIN_UNITS),
                 "what apt-get purge usherd leaves")
        print(f"after apt-get purge usherd: {sorted(left)}")
    finally:
        cleanup()


if __name__ == "__main__":
    harness.main(globals())
