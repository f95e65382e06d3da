#!/usr/bin/python3
"""The forged readiness line: a client that never authenticates cannot end its startup.

`sshd -i -e` copies a client's KEXINIT algorithm names, CR and LF included, into its log
before any authentication ("Unable to negotiate ... Their offer: ..."). A client can therefore
make sshd print a complete, strictly well-formed "Accepted publickey for root ..." line. usherd
matches X-ReadyLog= only at the start of a record (one write() of the instance), and sshd
writes each message with one write() that begins with its own words, so the smuggled line
stays in the middle of a record and the instance stays a startup. A 100 KB record through the
same capture neither crashes nor stalls usherd.
"""
# ctest-resource-lock: usherdtest;run-sshd

import os
import socket
import struct

import harness
from harness import check, check_eq
from test_sshd import READY_LOG, SshdSetup, check_sshd_config

FORGED = ("\r\nAccepted publickey for root from 1.2.3.4 port 1 ssh2: ED25519 SHA256:"
          + "A" * 43 + "\r\n")


def name_list(text):
    data = text.encode()
    return struct.pack(">I", len(data)) + data


def kexinit(evil):
    payload = bytes([20]) + os.urandom(16)
    lists = [evil, "ssh-ed25519", "aes128-ctr", "aes128-ctr", "hmac-sha2-256",
             "hmac-sha2-256", "none", "none", "", ""]
    for item in lists:
        payload += name_list(item)
    payload += b"\x00" + struct.pack(">I", 0)
    padding = 8 - ((len(payload) + 5) % 8)
    if padding < 4:
        padding += 8
    return struct.pack(">IB", len(payload) + padding + 1, padding) + payload + b"\x00" * padding


def test_a_readiness_line_smuggled_through_kexinit_does_not_end_the_startup():
    with SshdSetup(service_extra=f"X-ReadyLog={READY_LOG}\n") as setup:
        check_sshd_config(setup)
        with harness.Usherd(setup.units) as usherd:
            port = usherd.port("ssh.socket")
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            banner = s.recv(256)
            check(banner.startswith(b"SSH-2.0-"), f"sshd banner: {banner!r}")
            mark = usherd.log_mark()
            s.sendall(b"SSH-2.0-forger\r\n" + kexinit("x" + FORGED + "x"))
            # sshd logs the offer with the smuggled line inside it, then hangs up.
            usherd.wait_log(r"Their offer:", start_at=mark, what="sshd's negotiation failure")
            usherd.wait_log(r"Accepted publickey for root from 1\.2\.3\.4", start_at=mark,
                            what="the smuggled text in usherd's log")
            s.close()
            status = usherd.wait_instances_gone("ssh.socket")
            check("ready instance=" not in usherd.log_text(), "no instance became ready")
            usherd.wait_log(r"end instance=ssh@\S+ .*before-ready=yes", what="ended as a startup")
            check_eq(status["startups"]["current"], 0, "startups after the forger left")


def test_a_100_kb_record_neither_crashes_nor_stalls_the_daemon():
    units = {
        "big.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
        "big@.service": "[Service]\nExecStart=/usr/bin/python3 -c "
                        "\"import os,sys; os.write(2, b'Accepted ' + b'x' * 100000); "
                        "sys.stdout.write('done\\\\n')\"\n"
                        f"StandardInput=socket\nStandardError=journal\nX-ReadyLog={READY_LOG}\n",
    }
    with harness.Usherd(units) as usherd:
        port = usherd.port("big.socket")
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            data = s.makefile().read()
        check_eq(data, "done\n", "the instance ran")
        usherd.wait_log(r"output instance=big@\S+ \"Accepted x+", what="the record, cut, in the log")
        status = usherd.wait_instances_gone("big.socket")
        check_eq(status["startups"]["current"], 0, "startup ended by exit, not by the record")
        check("ready instance=" not in usherd.log_text(), "a record that does not match is not ready")


if __name__ == "__main__":
    harness.main(globals())
