#!/usr/bin/python3
"""Who may talk to usherd, and what an instance gets.

- The control socket refuses non-root peers twice over: its mode (0600) stops them at
  connect(), and if an administrator loosens the mode, usherd's SO_PEERCRED check answers
  "permission denied", counts and logs the refusal, and root is still served.
- An instance runs with exactly the unit's credentials, read from its /proc/PID/status: the
  four uids and four gids are User= and Group= (or the user's primary group), the groups are
  Group= plus the user's memberships plus SupplementaryGroups= and nothing else, and no
  capability is left (CapPrm, CapEff, CapAmb are 0).
- NoNewPrivileges=yes holds: NoNewPrivs is 1, and a setuid-root binary run by the instance
  stays at the user's uid; without it the same binary becomes root, which proves the test
  would see a failure.
- Path sockets (ListenStream=/path) get SocketUser=, SocketGroup= and SocketMode= exactly,
  parent directories DirectoryMode=, and the kernel enforces them: the owner connects, a
  user outside owner and group gets EACCES.
- Each command's own prefix decides its credentials: ExecStartPre=/ExecStart=/ExecStartPost=/
  ExecStop= lines marked '+' or '!' run as root, the others as User=, whatever the other
  lines say.

(READY=1 from a process outside an instance's tree: test_budget.py. No usherd fd or
variable in 10,000 handoffs: test_handoff.py. Hostile input: test_bad_input.py.)
"""
# ctest-resource-lock: usherdtest

import grp
import os
import pwd
import shutil
import socket
import stat

import harness
from harness import check, check_eq

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def fetch(port):
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        return s.makefile("rb").read().decode("utf-8", "replace")


def status_fields(text):
    """/proc/PID/status as {key: [values]}, plus the setuid probe's line."""
    fields = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if sep:
            fields[key] = rest.split()
        elif line.startswith("setuid-euid "):
            fields["setuid-euid"] = line.split()[1:]
    return fields


def test_the_control_socket_refuses_non_root_peers():
    uid, _, _ = harness.ensure_test_user()
    units = {"echo.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
             "echo@.service": "[Service]\nExecStart=/bin/echo hello\nStandardInput=socket\n"}
    with harness.Usherd(units) as usherd:
        control = os.path.join(usherd.runtime_dir, "control")
        ctl = [harness.usherctl_binary(), "--runtime-dir", usherd.runtime_dir, "status"]
        as_user = ["runuser", "-u", harness.TEST_USER, "--"]

        check_eq(stat.S_IMODE(os.stat(control).st_mode), 0o600, "control socket mode")
        denied = harness.run(as_user + ctl, check_rc=False)
        check_eq(denied.returncode, 1, f"usherctl as {harness.TEST_USER}: {denied.stderr}")
        check("cannot reach usherd" in denied.stderr, f"and says so: {denied.stderr!r}")

        # Past the mode, usherd's own check: the peer's uid from SO_PEERCRED.
        os.chmod(control, 0o666)
        before = usherd.status()["control_requests"]["refused"]
        mark = usherd.log_mark()
        for who, argv in ((f"uid {uid}", as_user + ctl), ("nobody", NOBODY + ctl)):
            refused = harness.run(argv, check_rc=False)
            check_eq(refused.returncode, 1, f"usherctl as {who}: {refused.stdout}{refused.stderr}")
            check("permission denied: the control socket is for root" in refused.stderr,
                  f"usherd's answer to {who}: {refused.stderr!r}")
        usherd.wait_log(rf"refuse control connection uid={uid} ", start_at=mark)
        usherd.wait_log(r"refuse control connection uid=65534 ", start_at=mark)
        status = usherd.status()
        check_eq(status["control_requests"]["refused"] - before, 2, "refusals counted")
        check_eq(fetch(usherd.port("echo.socket")), "hello\n", "usherd serves on")


def probe_service(extra, setuid_binary):
    return ("[Service]\n"
            f"ExecStart=/bin/sh -c 'cat /proc/self/status; echo setuid-euid $({setuid_binary} -u)'\n"
            f"StandardInput=socket\nStandardError=journal\n{extra}")


def test_instances_run_with_the_units_uid_and_gids_and_no_more():
    uid, gid, _ = harness.ensure_test_user()
    nogroup = grp.getgrnam("nogroup").gr_gid
    extra_groups = [grp.getgrnam(g).gr_gid for g in ("users", "staff")]
    with harness.TempDir("usherd-setuid.") as tmp:
        # A setuid-root copy of id(1): what an instance could gain without NoNewPrivileges=.
        setuid_id = os.path.join(tmp, "id")
        shutil.copy("/usr/bin/id", setuid_id)
        os.chown(setuid_id, 0, 0)
        os.chmod(setuid_id, 0o4755)
        units = {
            "creds.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
            "creds@.service": probe_service(
                f"User={harness.TEST_USER}\nGroup=nogroup\nSupplementaryGroups=users staff\n",
                setuid_id),
            "nnp.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
            "nnp@.service": probe_service(f"User={harness.TEST_USER}\nNoNewPrivileges=yes\n",
                                          setuid_id),
        }
        with harness.Usherd(units) as usherd:
            creds = status_fields(fetch(usherd.port("creds.socket")))
            nnp = status_fields(fetch(usherd.port("nnp.socket")))

    expected_groups = sorted(set(os.getgrouplist(harness.TEST_USER, nogroup) + extra_groups))
    check_eq(creds["Uid"], [str(uid)] * 4, "User=: real, effective, saved and fs uid")
    check_eq(creds["Gid"], [str(nogroup)] * 4, "Group=: real, effective, saved and fs gid")
    check_eq(sorted(int(g) for g in creds["Groups"]), expected_groups,
             "groups: Group=, the user's memberships and SupplementaryGroups=, nothing else")
    for fields, what in ((creds, "creds"), (nnp, "nnp")):
        for cap in ("CapPrm", "CapEff", "CapAmb"):
            check_eq(int(fields[cap][0], 16), 0, f"{what}: {cap}")
    check_eq(creds["NoNewPrivs"], ["0"], "NoNewPrivs without NoNewPrivileges=")
    check_eq(creds["setuid-euid"], ["0"],
             "without NoNewPrivileges= a setuid-root binary becomes root (the probe works)")

    primary_groups = sorted(set(os.getgrouplist(harness.TEST_USER, gid)))
    check_eq(nnp["Uid"], [str(uid)] * 4, "NoNewPrivileges= unit: uids")
    check_eq(nnp["Gid"], [str(gid)] * 4, "no Group=: the user's primary group")
    check_eq(sorted(int(g) for g in nnp["Groups"]), primary_groups, "no Group=: the user's groups")
    check_eq(nnp["NoNewPrivs"], ["1"], "NoNewPrivileges=yes")
    check_eq(nnp["setuid-euid"], [str(uid)], "NoNewPrivileges=yes: the setuid bit gains nothing")
    print(f"User={harness.TEST_USER} Group=nogroup SupplementaryGroups=users staff -> "
          f"uid {uid}, gid {nogroup}, groups {expected_groups}; NoNewPrivileges=yes -> "
          f"NoNewPrivs 1, setuid root binary runs as {uid} (as 0 without it)")


def connects(path, as_argv=()):
    """True when connect(2) to the unix socket path succeeds, as the given user."""
    code = f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({path!r})"
    result = harness.run(list(as_argv) + ["/usr/bin/python3", "-c", code], check_rc=False)
    if result.returncode not in (0, 1):
        raise harness.TestFailure(f"connect probe failed: {result.stderr}")
    if result.returncode == 1:
        check("PermissionError" in result.stderr, f"refused for want of permission: "
                                                  f"{result.stderr}")
    return result.returncode == 0


def test_path_sockets_get_the_owner_group_and_mode_asked_for():
    uid, _, _ = harness.ensure_test_user()
    users = grp.getgrnam("users").gr_gid
    with harness.TempDir("usherd-paths.") as tmp:
        owned = os.path.join(tmp, "a", "b", "owned.sock")
        default = os.path.join(tmp, "default.sock")
        group_only = os.path.join(tmp, "group.sock")
        units = {
            "owned.socket": f"[Socket]\nListenStream={owned}\nAccept=yes\n"
                            f"SocketUser={harness.TEST_USER}\nSocketGroup=users\nSocketMode=0600\n"
                            "DirectoryMode=0751\n",
            "default.socket": f"[Socket]\nListenStream={default}\nAccept=yes\n",
            "group.socket": f"[Socket]\nListenStream={group_only}\nAccept=yes\n"
                            "SocketGroup=users\nSocketMode=0660\n",
        }
        for name in ("owned", "default", "group"):
            units[f"{name}@.service"] = ("[Service]\nExecStart=/bin/echo hello\n"
                                         "StandardInput=socket\n")
        with harness.Usherd(units) as usherd:
            cases = ((owned, uid, users, 0o600), (default, 0, 0, 0o666),
                     (group_only, 0, users, 0o660))
            for path, owner, group, mode in cases:
                st = os.lstat(path)
                check(stat.S_ISSOCK(st.st_mode), f"{path} is a socket")
                check_eq((st.st_uid, st.st_gid, oct(stat.S_IMODE(st.st_mode))),
                         (owner, group, oct(mode)), f"owner, group and mode of {path}")
            for d in (os.path.dirname(owned), os.path.dirname(os.path.dirname(owned))):
                check_eq(oct(stat.S_IMODE(os.stat(d).st_mode)), oct(0o751),
                         f"DirectoryMode= of {d}")

            as_user = ["runuser", "-u", harness.TEST_USER, "--"]
            check(connects(owned, as_user), "the SocketUser= connects")
            check(not connects(owned, NOBODY), "nobody else does, not even its group")
            check(not connects(owned, NOBODY[:-1] + [f"--groups={users}"]), "(0600)")
            check(connects(default, NOBODY), "anyone connects to a 0666 socket")
            check(not connects(group_only, as_user), "a 0660 root:users socket refuses others")
            check(connects(group_only, NOBODY[:-1] + [f"--groups={users}"]),
                  "and admits its group")
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(20)
                s.connect(owned)
                check_eq(s.makefile("rb").read(), b"hello\n", "an instance answers on the path")
            check_eq(usherd.socket_status("owned.socket")["admitted"], 2,
                     "the two connections that got in were served")
    print(f"SocketUser={harness.TEST_USER} SocketGroup=users SocketMode=0600 -> {uid}:{users} 0600; "
          f"SocketGroup=users SocketMode=0660 -> 0:{users} 0660; defaults -> 0:0 0666; enforced")


def test_plus_and_bang_commands_skip_user_and_the_others_run_as_the_user():
    uid, _, _ = harness.ensure_test_user()
    with harness.TempDir("usherd-prefix.") as tmp:
        os.chmod(tmp, 0o777)  # written by the unit's user and by root

        # Appended: nobody takes the connection, so the oneshot runs again after it finishes
        # (as often as it gets to before usherd stops); every run must say the same.
        def write_uid(name):
            return f"/bin/sh -c 'id -u >> {tmp}/{name}'"

        units = {
            "prefix.socket": "[Socket]\nListenStream=127.0.0.1:0\n",
            "prefix.service": f"[Service]\nType=oneshot\nUser={harness.TEST_USER}\n"
                              f"ExecStartPre=+{write_uid('pre_plus')}\n"
                              f"ExecStartPre={write_uid('pre_user')}\n"
                              f"ExecStart=!{write_uid('main_bang')}\n"
                              f"ExecStart={write_uid('main_user')}\n"
                              f"ExecStartPost=+{write_uid('post_plus')}\n",
            "stopper.socket": "[Socket]\nListenStream=127.0.0.1:0\n",
            "stopper.service": f"[Service]\nUser={harness.TEST_USER}\n"
                               "ExecStart=+/bin/sleep 1000\n"
                               f"ExecStop=+{write_uid('stop_plus')}\n"
                               f"ExecStop={write_uid('stop_user')}\n",
        }
        with harness.Usherd(units) as usherd:
            mark = usherd.log_mark()
            socket.create_connection(("127.0.0.1", usherd.port("prefix.socket")), timeout=10).close()
            usherd.wait_log(r"finished service=prefix\.service", start_at=mark,
                            what="the oneshot's commands")
            socket.create_connection(("127.0.0.1", usherd.port("stopper.socket")),
                                     timeout=10).close()
            usherd.wait_log(r"started service=stopper\.service", start_at=mark,
                            what="the service whose ExecStop= lines run at usherd's stop")
            check_eq(usherd.stop(), 0, "usherd exit code")
        ran_as = {}
        for name in ("pre_plus", "pre_user", "main_bang", "main_user", "post_plus", "stop_plus",
                     "stop_user"):
            with open(os.path.join(tmp, name)) as f:
                uids = set(f.read().split())
            check_eq(len(uids), 1, f"{name}: one uid in every run ({uids})")
            ran_as[name] = int(uids.pop())
    check_eq(ran_as, {"pre_plus": 0, "pre_user": uid, "main_bang": 0, "main_user": uid,
                      "post_plus": 0, "stop_plus": 0, "stop_user": uid},
             "each command's own prefix decides: '+' and '!' as root, the rest as User=")


if __name__ == "__main__":
    harness.main(globals())
