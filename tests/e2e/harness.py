"""End-to-end test harness: runs the real usherd with real clients on loopback.

A test script defines functions named test_* and ends with `harness.main(globals())`. Each
test runs under a global deadline (SIGALRM raises TestTimeout; a watchdog thread ends the
whole process if even that does not unwind it), its failures are collected, and the script
prints one line per test and the closing line "N passed, N failed, N skipped". Exit code 0
when everything ran and passed, 77 (CTest's skip) when every test was skipped, 1 otherwise.

Usherd is a context manager: it writes the given unit files into a fresh directory under
/run (mode 0755: sshd refuses key and config paths below world-writable /tmp), starts
`usherd --units DIR --config FILE --runtime-dir DIR --log-level debug`, and waits for the
"start " log line as the event that the listeners and the control socket are ready; if the
line does not come within the deadline, or usherd exits first, the test fails. Every line
usherd writes is kept, so tests wait for log events (wait_log) instead of sleeping. On the
way out usherd is stopped, and every process it left behind (per-connection instances keep
running across a usherd stop, by design) is killed through a pidfd taken while it was still
known to be usherd's descendant; the temporary directory is removed. When the body raised,
usherd's whole log is written to stderr.

Programs that run as users other than root (usherctl under runuser, helpers as a unit's
User=) must be reachable by them: when the build directory is not (a clone in /root), the
tests run copies of the build's programs instead (build_dir).

Standard library only; run with Debian's /usr/bin/python3.
"""

import atexit
import fcntl
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SKIP_EXIT_CODE = 77
TEST_TIMEOUT_S = float(os.environ.get("USHERD_E2E_TEST_TIMEOUT", "90"))
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0
COMMAND_TIMEOUT_S = 30.0
TEST_USER = "usherdtest"
# USHERD_E2E_VERBOSE=1 writes usherd's log to stderr after passing tests too.


class TestFailure(AssertionError):
    """A claim of the test did not hold."""


class TestSkipped(Exception):
    """The test cannot run here (a daemon is not installed, not root, ...)."""


class TestTimeout(Exception):
    """The global per-test deadline passed."""


# ---------------------------------------------------------------------------------------
# Claims


def check(condition, message):
    """Fails the test with message unless condition holds."""
    if not condition:
        raise TestFailure(message)


def check_eq(actual, expected, what):
    """Fails the test unless actual == expected, naming both."""
    if actual != expected:
        raise TestFailure(f"{what}: expected {expected!r}, got {actual!r}")


def skip(message):
    """Skips the current test with a reason."""
    raise TestSkipped(message)


def require_root():
    """Skips unless running as root (test users, /run/sshd, privilege separation)."""
    if os.geteuid() != 0:
        skip("needs root")


def require_binaries(*paths):
    """Skips unless every program exists (absolute path, or a name looked up in PATH)."""
    for path in paths:
        found = path if os.path.isabs(path) else shutil.which(path)
        if not found or not os.access(found, os.X_OK):
            skip(f"{path} is not installed")


def sanitized():
    """True when the binaries are built with ASan/UBSan (`make asan-test` sets
    USHERD_SANITIZED=1)."""
    return os.environ.get("USHERD_SANITIZED") == "1"


def skip_under_sanitizers(reason):
    """Skips under sanitizers a test that cannot hold there; reason says why."""
    if sanitized():
        skip(f"not under sanitizers: {reason}")


# ---------------------------------------------------------------------------------------
# Paths and commands


def cmake_build_dir():
    """The CMake build directory (USHERD_BUILD_DIR, set by CTest)."""
    value = os.environ.get("USHERD_BUILD_DIR")
    if not value:
        here = os.path.dirname(os.path.abspath(__file__))
        value = os.path.join(os.path.dirname(os.path.dirname(here)), "build")
    return value


# The build's folders of programs that tests run, some of them as users other than root:
# usherctl under runuser and setpriv, tests/helpers/* as a unit's User=.
_PROGRAM_DIRS = ("supervisor", os.path.join("tests", "helpers"), "bench")
_PROGRAMS_PREFIX = "usherd-e2e-programs."
_programs_copy = None


def reachable_by_everyone(path):
    """True when every directory from / down to path lets any user through (o+x)."""
    path = os.path.realpath(path)
    while True:
        try:
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


def build_dir():
    """Where the tests take usherd, usherctl and the helper programs from.

    The CMake build directory, unless a user other than root cannot reach it: a root user's
    clone lands in /root (mode 0700), and there an instance with User=usherdtest, or usherctl
    run as nobody, fails to exec with EACCES. Then the programs are copied, once per script,
    into a directory of their own (see _copy_programs) and the tests see that as the build
    directory, so no test depends on the modes of the directories above the checkout.
    """
    real = cmake_build_dir()
    if reachable_by_everyone(real):
        return real
    global _programs_copy
    if _programs_copy is None:
        _programs_copy = _copy_programs(real)
    return _programs_copy


def _copy_programs(real):
    """Copies the executables of _PROGRAM_DIRS into /var/tmp/usherd-e2e-programs.PID.XXXX
    (root's, every directory 0755, removed when the script exits); returns its path.

    A hard link when the build is on the same file system and its file is already readable
    and executable by all (free, and the same inode: what was built is what runs), else a
    copy with mode 0755. A copy left by a script that was killed (the watchdog's _exit, a
    CTest timeout) is removed by the next one, by the pid in its name.
    """
    base = "/var/tmp"
    for name in os.listdir(base):
        if name.startswith(_PROGRAMS_PREFIX):
            pid = name[len(_PROGRAMS_PREFIX):].split(".")[0]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)
    copy = tempfile.mkdtemp(prefix=f"{_PROGRAMS_PREFIX}{os.getpid()}.", dir=base)
    atexit.register(shutil.rmtree, copy, ignore_errors=True)
    os.chmod(copy, 0o755)
    everyone_rx = stat.S_IROTH | stat.S_IXOTH
    for sub in _PROGRAM_DIRS:
        source = os.path.join(real, sub)
        if not os.path.isdir(source):
            continue
        target = copy
        for part in sub.split(os.sep):
            target = os.path.join(target, part)
            os.makedirs(target, exist_ok=True)
            os.chmod(target, 0o755)
        for name in os.listdir(source):
            path = os.path.join(source, name)
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode) or not st.st_mode & stat.S_IXUSR:
                continue
            destination = os.path.join(target, name)
            if st.st_mode & everyone_rx == everyone_rx:
                try:
                    os.link(path, destination)
                    continue
                except OSError:
                    pass  # another file system: copy
            shutil.copyfile(path, destination)
            os.chmod(destination, 0o755)
    return copy


def source_dir():
    """The source tree (USHERD_SOURCE_DIR, set by CTest)."""
    value = os.environ.get("USHERD_SOURCE_DIR")
    if not value:
        value = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return value


def usherd_binary():
    return os.path.join(build_dir(), "supervisor", "usherd")


def usherctl_binary():
    return os.path.join(build_dir(), "supervisor", "usherctl")


def run(argv, *, timeout=COMMAND_TIMEOUT_S, check_rc=True, input_text=None, env=None, cwd=None):
    """Runs a command to completion with a deadline; returns CompletedProcess (text).

    With check_rc a non-zero exit fails the test, showing the command and its output.
    """
    try:
        proc = subprocess.run(argv, input=input_text, capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise TestFailure(f"command did not finish in {timeout}s: {argv}\n"
                          f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}") from None
    if check_rc and proc.returncode != 0:
        raise TestFailure(f"command failed (exit {proc.returncode}): {argv}\n"
                          f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


class TempDir:
    """A directory under /run (0755, root-owned ancestors), removed on exit."""

    def __init__(self, prefix="usherd-test."):
        base = "/run" if os.access("/run", os.W_OK) else None
        self.path = tempfile.mkdtemp(prefix=prefix, dir=base)
        os.chmod(self.path, 0o755)

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        return False


def write_file(path, text, mode=0o644):
    """Writes text to path (parents created) with the given mode."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


_test_user_lock = None


def ensure_test_user():
    """Creates the login user for ssh tests if needed and unlocks it for `UsePAM no`.

    Returns (uid, gid, home). Scripts using it declare `# ctest-resource-lock: usherdtest`,
    which serialises them within one CTest run; the flock taken here (held until the script
    exits) does the same across runs, e.g. two checkouts testing on one machine, since the
    tests install keys in the user's home.
    """
    require_root()
    global _test_user_lock
    if _test_user_lock is None:
        _test_user_lock = os.open("/run/usherd-tests.usherdtest.lock", os.O_CREAT | os.O_RDWR,
                                  0o600)
        fcntl.flock(_test_user_lock, fcntl.LOCK_EX)  # the test's global deadline bounds it
    if run(["id", "-u", TEST_USER], check_rc=False).returncode != 0:
        run(["useradd", "-m", "-s", "/bin/sh", TEST_USER])
    # useradd leaves '!' (locked); sshd with UsePAM no then refuses the account.
    run(["usermod", "-p", "*", TEST_USER])
    import pwd

    entry = pwd.getpwnam(TEST_USER)
    if not os.path.isdir(entry.pw_dir):
        os.makedirs(entry.pw_dir, mode=0o755)
        os.chown(entry.pw_dir, entry.pw_uid, entry.pw_gid)
    return entry.pw_uid, entry.pw_gid, entry.pw_dir


class AuthorizedKey:
    """Installs a key as the test user's ~/.ssh/authorized_keys; restores it on exit."""

    def __init__(self, pubkey_text):
        self.text = pubkey_text

    def __enter__(self):
        uid, gid, home = ensure_test_user()
        ssh_dir = os.path.join(home, ".ssh")
        self.ssh_dir_existed = os.path.isdir(ssh_dir)
        os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
        os.chown(ssh_dir, uid, gid)
        self.path = os.path.join(ssh_dir, "authorized_keys")
        self.previous = None
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                self.previous = f.read()
        write_file(self.path, self.text, mode=0o600)
        os.chown(self.path, uid, gid)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            write_file(self.path, self.previous, mode=0o600)
        else:
            os.unlink(self.path)
            if not self.ssh_dir_existed:
                os.rmdir(os.path.dirname(self.path))
        return False


def ssh_client_options(port, key):
    """Options for a non-interactive ssh/sftp client against a throwaway host key."""
    return ["-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
            "-o", "IdentitiesOnly=yes", "-F", "/dev/null"]


# ---------------------------------------------------------------------------------------
# Processes left behind


def _children_map():
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        # The command may hold spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(name))
    return children


def descendants(pid):
    """Pids of every live descendant of pid (a snapshot)."""
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def open_pidfds(pids):
    """pidfds for the pids still alive; a pidfd never names a recycled pid."""
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except OSError:
            pass
    return fds


def kill_pidfds(fds):
    """SIGKILLs each process behind the pidfds, then closes them."""
    for fd in fds:
        try:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        except OSError:
            pass
        os.close(fd)


# ---------------------------------------------------------------------------------------
# usherd


class Usherd:
    """usherd on a temporary units dir, config and runtime dir.

    units: {"ssh.socket": "...", "ssh@.service": "..."}; config: usherd.conf text or None.
    """

    def __init__(self, units, config=None, extra_args=(), unit_dirs=(), check_binary=True):
        self.units = dict(units)
        self.config = config
        self.extra_args = list(extra_args)
        self.extra_unit_dirs = list(unit_dirs)
        self.proc = None
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        self._reader = None
        self._tmp = None
        self.exit_code = None
        if check_binary and not os.access(usherd_binary(), os.X_OK):
            raise TestFailure(f"usherd is not built: {usherd_binary()} is missing")

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self):
        self._tmp = TempDir("usherd-test.")
        self.dir = self._tmp.path
        self.units_dir = os.path.join(self.dir, "units")
        self.runtime_dir = os.path.join(self.dir, "runtime")
        self.config_path = os.path.join(self.dir, "usherd.conf")
        self.log_path = os.path.join(self.dir, "usherd.log")
        os.makedirs(self.units_dir)
        for name, text in self.units.items():
            write_file(os.path.join(self.units_dir, name), text)
        write_file(self.config_path, self.config if self.config is not None else "[Policy]\n")
        try:
            self.start()
        except BaseException:
            self._cleanup(failed=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        self._cleanup(failed=exc_type is not None)
        return False

    def argv(self):
        argv = [usherd_binary()]
        for d in [self.units_dir] + self.extra_unit_dirs:
            argv += ["--units", d]
        argv += ["--config", self.config_path, "--runtime-dir", self.runtime_dir,
                 "--log-level", "debug"]
        return argv + self.extra_args

    def start(self):
        """Starts usherd and waits for its "start " line (fails on deadline or early exit)."""
        self.lines, self.eof = [], False
        self._log = open(self.log_path, "a", encoding="utf-8")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        self.before_start_line()
        self.wait_log(r"(^| )start ", timeout=START_TIMEOUT_S, what="usherd start line")

    def before_start_line(self):
        """Hook for launchers that need a nudge before usherd runs (e.g. a first connection)."""

    def restart(self):
        """Starts usherd again on the same units and runtime dir (after stop() or a kill)."""
        self._log.close()
        self.start()

    def _read_output(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._log.write(line + "\n")
            self._log.flush()
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT_S):
        """SIGTERM, then waits for exit within the deadline; returns the exit code."""
        check(self.alive(), "usherd exited before it was asked to stop:\n" + self.log_text())
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"usherd did not exit within {timeout}s of SIGTERM") from None
        self._reader.join(timeout=5)
        return self.exit_code

    def _cleanup(self, failed):
        leftovers = []
        if self.proc is not None:
            leftovers = open_pidfds(descendants(self.proc.pid))
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            if self._reader is not None:
                self._reader.join(timeout=5)
            self.proc.stdout.close()
            self._log.close()
        kill_pidfds(leftovers)
        if failed or os.environ.get("USHERD_E2E_VERBOSE"):
            sys.stderr.write(f"----- usherd log ({self.log_path}) -----\n{self.log_text()}\n"
                             "----- end of usherd log -----\n")
        if self._tmp is not None:
            self._tmp.__exit__(None, None, None)

    # -- the log -------------------------------------------------------------------------

    def log_text(self):
        with self.cond:
            return "\n".join(self.lines)

    def wait_log(self, pattern, timeout=20.0, start_at=0, what=None):
        """Waits until a log line (from index start_at on) matches pattern; returns the match.

        Fails the test when the deadline passes or usherd's output ends first.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = start_at
        with self.cond:
            while True:
                while index < len(self.lines):
                    m = regex.search(self.lines[index])
                    index += 1
                    if m:
                        return m
                if self.eof:
                    raise TestFailure(f"usherd exited (code {self.proc.poll()}) before "
                                      f"{what or pattern!r} was logged")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TestFailure(f"{what or pattern!r} not logged within {timeout}s")
                self.cond.wait(remaining)

    def log_mark(self):
        """The current end of the log, for wait_log(start_at=...)."""
        with self.cond:
            return len(self.lines)

    # -- control -------------------------------------------------------------------------

    def usherctl(self, *args, check_rc=True):
        """Runs usherctl against this usherd's runtime dir."""
        return run([usherctl_binary(), "--runtime-dir", self.runtime_dir, *args],
                   check_rc=check_rc, timeout=15)

    def status(self):
        """`usherctl status --json`, parsed."""
        out = self.usherctl("status", "--json").stdout
        try:
            return json.loads(out)
        except ValueError as e:
            raise TestFailure(f"usherctl status --json printed no JSON ({e}):\n{out}") from None

    def socket_status(self, name, status=None):
        """The sockets[] entry named name."""
        status = status or self.status()
        for s in status.get("sockets", []):
            if s.get("name") == name:
                return s
        raise TestFailure(f"socket {name} not in status: {json.dumps(status)}")

    def port(self, socket_name):
        """The TCP port the socket unit's first listener is bound to."""
        listen = self.socket_status(socket_name).get("listen") or []
        check(listen, f"{socket_name} lists no bound address")
        host, _, port = listen[0].rpartition(":")
        check(port.isdigit() and int(port) > 0, f"{socket_name}: no port in {listen[0]!r}")
        return int(port)

    def wait_instances_gone(self, socket_name, timeout=20.0):
        """Waits until no instance of the socket is listed; returns the last status.

        The event is the "end instance=" log line; status is then read to confirm.
        """
        deadline = time.monotonic() + timeout
        mark = 0
        while True:
            status = self.status()
            live = [i for i in status.get("instances", []) if i.get("socket") == socket_name]
            if not live:
                return status
            remaining = deadline - time.monotonic()
            check(remaining > 0, f"instances of {socket_name} still listed after {timeout}s: "
                                 f"{json.dumps(live)}")
            m = self.wait_log(r"(^| )end instance=", timeout=remaining, start_at=mark,
                              what="end of an instance")
            del m
            mark = self.log_mark()


def total_dropped(socket_entry):
    """Sum of a socket's drop counters."""
    dropped = socket_entry.get("dropped") or {}
    return sum(int(v) for v in dropped.values())


# ---------------------------------------------------------------------------------------
# Runner


def _on_alarm(signum, frame):
    raise TestTimeout(f"test exceeded its {TEST_TIMEOUT_S:.0f}s deadline")


def main(namespace):
    """Runs every test_* function of the calling script; exits with 0, 1 or 77."""
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    only = sys.argv[1:]
    if only:
        unknown = [n for n in only if n not in namespace]
        if unknown:
            sys.exit(f"unknown tests: {unknown}")
        tests = [(n, f) for n, f in tests if n in only]
    signal.signal(signal.SIGALRM, _on_alarm)
    passed = failed = skipped = 0
    script = os.path.basename(namespace.get("__file__", "e2e"))
    for name, func in tests:
        # A watchdog for the case where the alarm cannot unwind the test (a wedged syscall).
        watchdog = threading.Timer(TEST_TIMEOUT_S + 60, lambda: (
            sys.stderr.write(f"{script}: {name} wedged; aborting\n"), os._exit(1)))
        watchdog.daemon = True
        watchdog.start()
        started = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT_S)
        try:
            func()
            outcome = "PASS"
            passed += 1
        except TestSkipped as e:
            outcome = f"SKIP ({e})"
            skipped += 1
        except BaseException as e:  # noqa: BLE001 - report every failure, then go on
            signal.setitimer(signal.ITIMER_REAL, 0)
            outcome = "FAIL"
            failed += 1
            sys.stderr.write(f"--- {name} failed ---\n")
            if isinstance(e, (TestFailure, TestTimeout)):
                sys.stderr.write(f"{type(e).__name__}: {e}\n")
                sys.stderr.write("".join(traceback.format_tb(e.__traceback__)[-3:]))
            else:
                traceback.print_exc()
            if isinstance(e, KeyboardInterrupt):
                break
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            watchdog.cancel()
        print(f"{outcome:4} {name} ({time.monotonic() - started:.1f}s)", flush=True)
    print(f"{script}: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    if failed:
        sys.exit(1)
    if passed == 0 and skipped > 0:
        sys.exit(SKIP_EXIT_CODE)
    sys.exit(0)
