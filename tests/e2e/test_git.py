#!/usr/bin/python3
"""git daemon in inetd mode behind usherd: clone a repository the test creates.

The instance runs /usr/lib/git-core/git-daemon directly (the `git daemon` wrapper would stay
alive as its parent), as User=nobody: the repository is root's, so git's ownership check is
relaxed through GIT_CONFIG_* (command-line scope), and HOME points nowhere readable. git
daemon logs in inetd mode only with --log-destination=stderr, which StandardError=journal
sends to usherd's log.
"""

import os

import harness
from harness import check, check_eq

GIT_DAEMON = "/usr/lib/git-core/git-daemon"


def make_repository(t):
    """A bare repo at t/git/repo.git with two commits; returns (bare path, HEAD commit)."""
    git = ["git", "-c", "user.name=usherd test", "-c", "user.email=test@example.invalid",
           "-c", "init.defaultBranch=main"]
    work = f"{t}/work"
    harness.run(git + ["init", "-q", work])
    harness.write_file(f"{work}/README", "served by git daemon --inetd under usherd\n")
    harness.write_file(f"{work}/data/numbers.txt",
                       "".join(f"{i} {i * i}\n" for i in range(1000)))
    harness.run(git + ["-C", work, "add", "-A"])
    harness.run(git + ["-C", work, "commit", "-q", "-m", "first"])
    harness.write_file(f"{work}/data/more.txt", "second commit\n")
    harness.run(git + ["-C", work, "add", "-A"])
    harness.run(git + ["-C", work, "commit", "-q", "-m", "second"])
    bare = f"{t}/git/repo.git"
    harness.run(git + ["clone", "-q", "--bare", work, bare])
    head = harness.run(["git", "-C", bare, "rev-parse", "HEAD"]).stdout.strip()
    return work, head


def git_units(base):
    return {
        "git.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
        "git@.service": f"""\
[Unit]
Description=git daemon per-connection instance (test)
ConditionPathExists={GIT_DAEMON}

[Service]
ExecStart={GIT_DAEMON} --inetd --verbose --log-destination=stderr --export-all \\
    --base-path={base} {base}
User=nobody
Group=nogroup
Environment=HOME=/nonexistent GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory
Environment="GIT_CONFIG_VALUE_0=*"
StandardInput=socket
StandardError=journal
""",
    }


def test_git_clone_over_git_daemon_inetd_gives_the_same_tree_and_history():
    harness.require_binaries("git", GIT_DAEMON)
    harness.require_root()
    with harness.TempDir("usherd-git.") as t:
        work, head = make_repository(t)
        with harness.Usherd(git_units(f"{t}/git")) as usherd:
            port = usherd.port("git.socket")
            clone = f"{t}/clone"
            harness.run(["git", "clone", "-q", f"git://127.0.0.1:{port}/repo.git", clone])
            check_eq(harness.run(["git", "-C", clone, "rev-parse", "HEAD"]).stdout.strip(), head,
                     "HEAD of the clone")
            for rel in ("README", "data/numbers.txt", "data/more.txt"):
                with open(f"{work}/{rel}", "rb") as a, open(f"{clone}/{rel}", "rb") as b:
                    check(a.read() == b.read(), f"{rel} is the same in the clone")
            count = harness.run(["git", "-C", clone, "rev-list", "--count", "HEAD"]).stdout
            check_eq(count.strip(), "2", "commits in the clone")
            # git daemon's own log reached usherd's log through StandardError=journal.
            usherd.wait_log(r"Request upload-pack for '/repo\.git'",
                            what="git daemon's request line in usherd's log")
            # A missing repository is git daemon's answer, not a failure of the listener.
            missing = harness.run(["git", "ls-remote", f"git://127.0.0.1:{port}/nope.git"],
                                  check_rc=False)
            # git daemon's wording depends on its version: "no such repository" or "access
            # denied or repository not exported".
            check(missing.returncode != 0 and "remote error" in missing.stderr
                  and "/nope.git" in missing.stderr,
                  f"ls-remote of a missing repo fails: {missing.returncode} {missing.stderr!r}")
            again = harness.run(["git", "ls-remote", f"git://127.0.0.1:{port}/repo.git"]).stdout
            check(head in again, f"the listener still serves after that: {again!r}")
            status = usherd.wait_instances_gone("git.socket")
            sock = usherd.socket_status("git.socket", status)
            check_eq(sock.get("accepted"), 3, "connections accepted")
            check_eq(harness.total_dropped(sock), 0, "connections dropped")
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")


if __name__ == "__main__":
    harness.main(globals())
