#!/usr/bin/python3
"""The seed incident, end to end with real OpenSSH.

sshd runs once per connection (sshd -i) behind three sockets that share one global budget,
MaxStartups=4:50:8, and authentication is slow (an AuthorizedKeysCommand that sleeps, like a
directory service under load). A burst of connections from one loopback address that never
authenticate fills the budget: the number of instances in startup never exceeds full
(startups.peak), every refused connection reads sshd's own "Not allowed at this time" and is
counted by reason, an ExemptSources= address still logs in on the reserved slots while the
burst holds the budget, and once the burst drains ordinary logins succeed again. Readiness
is sshd's "Accepted publickey" record (X-ReadyLog=).
"""
# ctest-resource-lock: usherdtest;run-sshd

import os
import socket

import harness
from harness import check, check_eq
from test_sshd import DROP_MESSAGE, READY_LOG, SSHD, SshdSetup, check_sshd_config

AKC_DELAY_S = 2


def slow_auth(setup):
    """Rewrites sshd_config so keys come from a command that sleeps first."""
    t = setup.dir
    harness.write_file(f"{t}/slow-akc", f"#!/bin/sh\nsleep {AKC_DELAY_S}\n"
                       f"cat {t}/authorized_keys.d/\"$1\"\n", mode=0o755)
    with open(setup.config, encoding="utf-8") as f:
        config = f.read()
    config = config.replace(f"AuthorizedKeysFile {t}/authorized_keys.d/%u",
                            f"AuthorizedKeysFile none\nAuthorizedKeysCommand {t}/slow-akc %u\n"
                            "AuthorizedKeysCommandUser nobody")
    harness.write_file(setup.config, config)


def three_sockets(setup):
    units = {}
    service = setup.units["ssh@.service"] + f"X-ReadyLog={READY_LOG}\n"
    for name in ("ssh-a", "ssh-b", "ssh-c"):
        units[f"{name}.socket"] = (setup.units["ssh.socket"] +
                                   "X-DropMessage=Not allowed at this time\\r\\n\n")
        units[f"{name}@.service"] = service
    return units


def banner_or_drop(s):
    """'banner' when an sshd instance greeted the connection, 'drop' when usherd refused it."""
    data = b""
    while b"\n" not in data:
        try:
            chunk = s.recv(256)
        except ConnectionError:
            return "drop"
        if not chunk:
            break
        data += chunk
    if data.startswith(b"SSH-2.0-"):
        return "banner"
    check_eq(data, DROP_MESSAGE, "what a refused client reads")
    return "drop"


def test_slow_authentication_under_a_burst_stays_within_the_global_budget():
    with SshdSetup() as setup:
        slow_auth(setup)
        check_sshd_config(setup)
        # The incident's own admission: random early drop, no waiting room (test_waiting_room
        # runs the same burst with the room).
        config = ("[Policy]\nMaxStartups=4:50:8\nExemptSources=127.0.0.9/32\nReservedStartups=2\n"
                  "WaitingRoom=no\n")
        with harness.Usherd(three_sockets(setup), config=config) as usherd:
            ports = [usherd.port(f"{n}.socket") for n in ("ssh-a", "ssh-b", "ssh-c")]
            burst, refused = [], 0
            for i in range(30):
                s = socket.create_connection(("127.0.0.1", ports[i % 3]), timeout=20)
                if banner_or_drop(s) == "banner":
                    burst.append(s)
                else:
                    s.close()
                    refused += 1
            status = usherd.status()
            check(status["startups"]["peak"] <= 8, f"peak {status['startups']['peak']} <= full 8")
            check_eq(status["startups"]["current"], len(burst), "every greeted client is a startup")
            check(len(burst) <= 8 and refused >= 22, f"{len(burst)} admitted, {refused} refused")
            drops = {}
            for s in status["sockets"]:
                for reason, n in s["dropped"].items():
                    drops[reason] = drops.get(reason, 0) + n
            check_eq(sum(drops.values()), refused, f"every refusal counted by reason: {drops}")
            check(set(drops) <= {"startups-full", "startups-early-drop"}, f"reasons {drops}")

            # An administrator from an exempt source logs in while the burst holds the budget.
            out = harness.run(["ssh", "-b", "127.0.0.9", "-p", str(ports[0]),
                               *harness.ssh_client_options(ports[0], setup.client_key),
                               f"{harness.TEST_USER}@127.0.0.1", "echo admin-in"], timeout=60)
            check_eq(out.stdout.strip(), "admin-in", "the exempt login")
            peak = usherd.status()["startups"]["peak"]
            check(peak <= 10, f"peak {peak} within full + ReservedStartups")

            for s in burst:
                s.close()
            for name in ("ssh-a.socket", "ssh-b.socket", "ssh-c.socket"):
                status = usherd.wait_instances_gone(name)
            check_eq(status["startups"]["current"], 0, "the burst drained")
            out = setup.ssh(ports[2], "echo back")
            check_eq(out.stdout.strip(), "back", "an ordinary login after the burst")
            usherd.wait_log(r"ready instance=ssh-c@\S+ after=[2-9]\.\d+s via=log",
                            what="a startup that lasted through the slow authentication")


if __name__ == "__main__":
    harness.main(globals())
