#!/usr/bin/python3
"""The manual pages and the installed defaults say what the programs do.

Each test takes a list from the programs (their --help, the metrics of a running usherd) or,
where no program shows it, from the source, and fails naming every entry the pages
(doc/man/*.scd) leave out:
- every unit key the parsers accept is in usherd.units(5), as KEY=;
- every usherd.conf key is in usherd.conf(5) and, commented out, in dist/usherd.conf;
- every usherctl subcommand and option is in usherctl(8) and in the bash completion;
- every usherd option is in usherd(8);
- every metric usherd exposes is in usherd(8), every drop reason in usherd.units(5);
- every page renders with scdoc, when it is installed.

The lists from the source come from one small function each (source_*), so that a parser
rewritten as a key table (rows like {"ListenStream", ...}) needs one function changed: they
take every quoted CapitalisedWord (or X-Word) of the parser files, which is what such a table
also holds. A word there that is not a key (a section name) is documented anyway.

Standard library only; run with Debian's /usr/bin/python3 (CTest runs it as "docs: man_pages").
"""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from harness import check  # noqa: E402

SOURCE = harness.source_dir()
MAN = os.path.join(SOURCE, "doc", "man")


def page(name):
    """A page's source as a reader sees its words: scdoc's escapes and markup removed."""
    with open(os.path.join(MAN, name + ".scd"), encoding="utf-8") as f:
        text = f.read()
    return re.sub(r"\\(.)", r"\1", text).replace("*", "")


def read(*parts):
    with open(os.path.join(SOURCE, *parts), encoding="utf-8") as f:
        return f.read()


def missing(words, text, form="{}"):
    """The words whose form does not occur in text as a whole word."""
    def pattern(w):
        f = form.format(w)
        end = r"(?![\w-])" if re.match(r"[\w-]", f[-1]) else ""  # KEY= may run into its value
        return r"(?<![\w-])" + re.escape(f) + end
    return sorted(w for w in set(words) if not re.search(pattern(w), text))


# -- lists from the source ------------------------------------------------------------------

def source_unit_keys():
    """Every key the unit parsers know: quoted CapitalisedWords and X-Words of units/.

    Condition and assert types are stored without their prefix ("PathExists"); they are
    returned as ConditionPathExists, and the prefixes themselves ("Condition", "Assert": the
    families, documented as Condition*=) are dropped, as are section names.
    """
    keys = set()
    word = re.compile(r'"((?:X-)?[A-Z][A-Za-z0-9]*)"')
    for name in ("socket_parser.cpp", "service_parser.cpp", "parse_context.cpp",
                 "resource_limit.cpp"):
        keys |= set(word.findall(read("units", name)))
    keys |= {"Condition" + t for t in word.findall(read("units", "conditions.cpp"))}
    return keys - {"Unit", "Socket", "Install", "Condition", "Assert"}


def source_daemon_config_keys():
    """The keys of usherd.conf: the quoted words compared with `key` in its parser."""
    return set(re.findall(r'key == "([A-Za-z][A-Za-z0-9-]*)"',
                          read("units", "daemon_config.cpp")))


# -- lists from the programs ----------------------------------------------------------------

def cli_help(argv):
    """(subcommands, options) of a CLI11 --help: the first word of each line under
    Subcommands:, every --option under Options: (headers in any case, CLI11 2.x or 2.4)."""
    out = harness.run(argv + ["--help"]).stdout
    subcommands, options, section = [], [], None
    for line in out.splitlines():
        header = re.match(r"^([A-Za-z]+):\s*$", line)
        if header:
            section = header.group(1).lower()
            continue
        if section == "subcommands" and line.startswith("  "):
            subcommands.append(line.split()[0])
        elif section == "options":
            # "  -h,--help  Print ..." or "  --to TEXT  write ...": the long name that begins
            # the line (after a short one), never a word of the description.
            option = re.match(r"^\s+(?:-\w,\s*)?(--[a-z][a-z-]*)", line)
            if option:
                options.append(option.group(1))
    check(options, f"{' '.join(argv)} --help lists options: {out!r}")
    return subcommands, [o for o in options if o != "--help"]


def running_metrics():
    """`usherctl metrics` of a usherd serving one socket: (metric names, drop reasons)."""
    units = {"probe.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
             "probe@.service": "[Service]\nExecStart=/bin/true\n"}
    with harness.Usherd(units) as usherd:
        text = usherd.usherctl("metrics").stdout
    names = re.findall(r"^# TYPE (\S+) ", text, re.M)
    reasons = re.findall(r'^usherd_drops_total\{[^}]*reason="([^"]+)"', text, re.M)
    check(names and reasons, f"metrics and drop reasons in `usherctl metrics`: {text!r}")
    return names, reasons


# -- tests ----------------------------------------------------------------------------------

def test_every_unit_key_the_parsers_accept_is_in_usherd_units_5():
    keys = source_unit_keys()
    check(len(keys) > 150, f"the extraction found the parsers' keys ({len(keys)}): {sorted(keys)}")
    absent = missing(keys, page("usherd.units.5"), "{}=")
    check(not absent, f"unit keys missing from doc/man/usherd.units.5.scd: {absent}")


def test_every_usherd_conf_key_is_in_usherd_conf_5_and_the_installed_default():
    keys = source_daemon_config_keys()
    check(len(keys) >= 8, f"the extraction found usherd.conf's keys: {sorted(keys)}")
    absent = missing(keys | {"ListenStream"}, page("usherd.conf.5"), "{}=")
    check(not absent, f"usherd.conf keys missing from doc/man/usherd.conf.5.scd: {absent}")
    default = read("dist", "usherd.conf")
    absent = missing(keys | {"ListenStream"}, default, "#{}=")
    check(not absent, f"keys missing (as #KEY=default) from dist/usherd.conf: {absent}")


def test_the_installed_default_usherd_conf_is_the_built_in_configuration():
    # Every line commented: usherd --check --strict on it must be clean.
    with harness.TempDir("usherd-docs.") as tmp:
        units = os.path.join(tmp, "units")
        os.makedirs(units)
        out = harness.run([harness.usherd_binary(), "--check", "--strict", "--units", units,
                           "--config", os.path.join(SOURCE, "dist", "usherd.conf")]).stdout
        check("0 errors, 0 warnings" in out, f"usherd --check on dist/usherd.conf: {out!r}")


def test_every_usherctl_subcommand_and_option_is_in_usherctl_8_and_the_completion():
    usherctl = harness.usherctl_binary()
    subcommands, options = cli_help([usherctl])
    check(len(subcommands) >= 7, f"usherctl --help lists subcommands: {subcommands}")
    for sub in subcommands:
        options += cli_help([usherctl, sub])[1]
    text = page("usherctl.8")
    completion = read("dist", "bash-completion", "usherctl")
    for what, words in (("subcommands", subcommands), ("options", options)):
        absent = missing(words, text)
        check(not absent, f"usherctl {what} missing from doc/man/usherctl.8.scd: {absent}")
        absent = missing(words, completion)
        check(not absent, f"usherctl {what} missing from dist/bash-completion/usherctl: {absent}")


def test_every_usherd_option_is_in_usherd_8():
    _, options = cli_help([harness.usherd_binary()])
    absent = missing(options, page("usherd.8"))
    check(not absent, f"usherd options missing from doc/man/usherd.8.scd: {absent}")


def test_every_metric_and_drop_reason_usherd_exposes_is_documented():
    names, reasons = running_metrics()
    absent = missing(names, page("usherd.8"))
    check(not absent, f"metrics missing from doc/man/usherd.8.scd: {absent}")
    absent = missing(reasons, page("usherd.units.5"))
    check(not absent, f"drop reasons missing from doc/man/usherd.units.5.scd: {absent}")


def test_every_page_renders():
    scdoc = shutil.which("scdoc")
    if not scdoc:
        harness.skip("scdoc is not installed (scripts/install-deps.sh build installs it)")
    for name in sorted(os.listdir(MAN)):
        with open(os.path.join(MAN, name), "rb") as source:
            done = subprocess.run([scdoc], stdin=source, capture_output=True, timeout=30)
        check(done.returncode == 0 and done.stdout.startswith(b".\\\" Generated by scdoc"),
              f"scdoc {name}: {done.stderr.decode(errors='replace')}")


if __name__ == "__main__":
    harness.main(globals())
