#!/usr/bin/python3
"""examples/ as shipped: they validate, and (copied, on port 0) they serve.

`usherd --check` must accept examples/units with examples/usherd.conf as they are. Then the
examples are copied with every ListenStream= port rewritten to 0 and /var/lib/usherd-examples
rewritten to a temporary directory, which scripts/run-examples.sh --prepare-only fills; usherd
started on those copies must serve a git clone of the demo repository, the rsync module and
(when Debian's sshd and its host keys are installed) an sshd banner.
"""

# ctest-resource-lock: run-sshd

import os
import re
import shutil
import socket

import harness
from harness import check, check_eq

EXAMPLES_DATA = "/var/lib/usherd-examples"


def examples_dir():
    return os.path.join(harness.source_dir(), "examples")


def test_usherd_check_accepts_the_examples_as_shipped():
    proc = harness.run([harness.usherd_binary(), "--check",
                        "--units", os.path.join(examples_dir(), "units"),
                        "--config", os.path.join(examples_dir(), "usherd.conf")], check_rc=False)
    check_eq(proc.returncode, 0, f"usherd --check exit code (output:\n{proc.stdout}{proc.stderr})")
    check(re.search(r"\b0 errors\b", proc.stdout) is not None,
          f"--check reports no error:\n{proc.stdout}")


def test_every_example_listens_on_loopback_only():
    units = os.path.join(examples_dir(), "units")
    sockets = [n for n in sorted(os.listdir(units)) if n.endswith(".socket")]
    check_eq(sockets, ["dropbear.socket", "git.socket", "rsync.socket", "ssh.socket"],
             "example sockets")
    for name in sockets:
        with open(os.path.join(units, name), encoding="utf-8") as f:
            listens = re.findall(r"^ListenStream=(.*)$", f.read(), re.M)
        check(listens and all(v.startswith("127.0.0.1:") for v in listens),
              f"{name} listens on loopback only: {listens}")


def copy_examples(dest, data):
    """Copies examples/ to dest with ports 0 and the data dir moved; returns the units dir."""
    units = os.path.join(dest, "units")
    os.makedirs(units)
    src = os.path.join(examples_dir(), "units")
    for name in os.listdir(src):
        with open(os.path.join(src, name), encoding="utf-8") as f:
            text = f.read()
        text = re.sub(r"^(ListenStream=127\.0\.0\.1:)\d+$", r"\g<1>0", text, flags=re.M)
        text = text.replace(EXAMPLES_DATA, data)
        harness.write_file(os.path.join(units, name), text)
    shutil.copy(os.path.join(examples_dir(), "usherd.conf"), os.path.join(dest, "usherd.conf"))
    return units


def test_the_examples_on_port_zero_serve_a_git_clone_and_an_rsync_listing():
    harness.require_root()
    harness.require_binaries("git", "/usr/lib/git-core/git-daemon")
    with harness.TempDir("usherd-examples.") as t:
        data = os.path.join(t, "data")
        env = dict(os.environ, USHERD_EXAMPLES_DATA=data)
        script = os.path.join(harness.source_dir(), "scripts", "run-examples.sh")
        first = harness.run([script, "--prepare-only"], env=env).stdout
        check("git clone git://127.0.0.1/demo.git" in first, f"the script says how:\n{first}")
        # Idempotent: a second run keeps the repository it made.
        head_before = harness.run(["git", "-C", f"{data}/git/demo.git", "rev-parse", "HEAD"])
        harness.run([script, "--prepare-only"], env=env)
        head_after = harness.run(["git", "-C", f"{data}/git/demo.git", "rev-parse", "HEAD"])
        check_eq(head_after.stdout, head_before.stdout, "demo repository HEAD after a re-run")

        units = copy_examples(os.path.join(t, "copy"), data)
        with open(os.path.join(t, "copy", "usherd.conf"), encoding="utf-8") as f:
            config = f.read()
        units_text = {}
        for name in os.listdir(units):
            with open(os.path.join(units, name), encoding="utf-8") as f:
                units_text[name] = f.read()
        with harness.Usherd(units_text, config=config) as usherd:
            port = usherd.port("git.socket")
            clone = os.path.join(t, "clone")
            harness.run(["git", "clone", "-q", f"git://127.0.0.1:{port}/demo.git", clone])
            with open(os.path.join(clone, "README"), encoding="utf-8") as f:
                check("demo repository" in f.read(), "the clone has the demo README")
            check_eq(harness.run(["git", "-C", clone, "rev-parse", "HEAD"]).stdout,
                     head_before.stdout, "HEAD of the clone")
            if os.access("/usr/bin/rsync", os.X_OK):
                rport = usherd.port("rsync.socket")
                listing = harness.run(["/usr/bin/rsync", f"rsync://127.0.0.1:{rport}/demo/"])
                check("README" in listing.stdout, f"rsync lists the demo module: {listing.stdout!r}")
            if os.access("/usr/sbin/sshd", os.X_OK) and os.path.exists(
                    "/etc/ssh/ssh_host_ed25519_key"):
                # The ssh example runs Debian's sshd with /etc/ssh: it answers with its banner.
                with socket.create_connection(("127.0.0.1", usherd.port("ssh.socket")),
                                              timeout=15) as conn:
                    banner = conn.makefile("rb").readline()
                check(banner.startswith(b"SSH-2.0-OpenSSH"), f"sshd's banner: {banner!r}")
                usherd.wait_instances_gone("ssh.socket")
            usherd.wait_instances_gone("git.socket")
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")


if __name__ == "__main__":
    harness.main(globals())
