#!/usr/bin/python3
"""rsync's daemon in inetd mode (stdin is the socket) behind usherd.

`rsync --daemon --config=FILE` with a module that chroots and drops to nobody. In inetd mode
rsync reopens stdout/stderr on /dev/null, so it logs only to its `log file`; the test reads
that file to see that the transfer went through the daemon.
"""

import filecmp
import os

import harness
from harness import check, check_eq

RSYNC = "/usr/bin/rsync"


def make_module(t):
    module = f"{t}/module"
    harness.write_file(f"{module}/one.txt", "file one\n")
    harness.write_file(f"{module}/sub/two.txt", "two\n")
    with open(f"{module}/sub/blob.bin", "wb") as f:
        f.write(os.urandom(100_000))
    os.chmod(f"{module}/sub/blob.bin", 0o644)
    config = f"{t}/rsyncd.conf"
    harness.write_file(config, f"""\
use chroot = yes
uid = nobody
gid = nogroup
reverse lookup = no
log file = {t}/rsyncd.log
transfer logging = yes

[module]
    path = {module}
    comment = usherd test module
    read only = yes
""")
    return module, config


def trees_equal(a, b):
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(trees_equal(os.path.join(a, d), os.path.join(b, d)) for d in cmp.common_dirs)


def test_rsync_daemon_inetd_lists_modules_and_copies_a_tree():
    harness.require_root()
    harness.require_binaries(RSYNC)
    with harness.TempDir("usherd-rsync.") as t:
        module, config = make_module(t)
        units = {
            "rsync.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
            "rsync@.service": f"""\
[Unit]
Description=rsync daemon per-connection instance (test)

[Service]
ExecStart={RSYNC} --daemon --config={config}
StandardInput=socket
""",
        }
        with harness.Usherd(units) as usherd:
            port = usherd.port("rsync.socket")
            url = f"rsync://127.0.0.1:{port}"
            modules = harness.run([RSYNC, f"{url}/"]).stdout
            check(modules.split() == ["module", "usherd", "test", "module"],
                  f"the module list: {modules!r}")
            listing = harness.run([RSYNC, f"{url}/module/"]).stdout
            names = sorted(line.split()[-1] for line in listing.splitlines() if line.strip())
            check_eq(names, [".", "one.txt", "sub"], "names in the module listing")
            out = f"{t}/out"
            harness.run([RSYNC, "-a", f"{url}/module/", f"{out}/"])
            check(trees_equal(module, out), "the copied tree equals the module")
            missing = harness.run([RSYNC, f"{url}/nomodule/"], check_rc=False)
            check(missing.returncode != 0 and "Unknown module" in missing.stderr,
                  f"an unknown module is refused: {missing.returncode} {missing.stderr!r}")
            status = usherd.wait_instances_gone("rsync.socket")
            sock = usherd.socket_status("rsync.socket", status)
            check_eq(sock.get("accepted"), 4, "connections accepted")
            check_eq(harness.total_dropped(sock), 0, "connections dropped")
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")
        with open(f"{t}/rsyncd.log", encoding="utf-8") as f:
            log = f.read()
        check("send " in log and "one.txt" in log, f"rsyncd logged the transfer:\n{log}")


if __name__ == "__main__":
    harness.main(globals())
