#!/usr/bin/env python3
"""deploy/prometheus checked by Debian's promtool (issue 8).

promtool check config (which also checks the rule files it names), promtool
check rules, promtool test rules on every *test*.yml; then, from the files
themselves: every alert has a `runbook` annotation and at least one unit-test
case where it fires and one where it does not.

Usage: promtool_test.py DEPLOY_PROMETHEUS_DIR
Exit 0: pass; 1: fail; 77: promtool is not installed (scripts/setup installs it).
"""
import glob
import os
import re
import shutil
import subprocess
import sys


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(args):
    print("$ " + " ".join(args), flush=True)
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(proc.stdout, end="", flush=True)
    if proc.returncode != 0:
        fail("%s exited %d" % (" ".join(args), proc.returncode))


def alert_blocks(text):
    """(name, block text) for every `- alert: NAME` rule of a rules file."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"^\s*- alert:\s*(\S+)", text, re.M)]
    ends = [s for s, _ in starts[1:]] + [len(text)]
    return [(name, text[s:e]) for (s, name), e in zip(starts, ends)]


def test_cases(text):
    """(alertname, fires) for every alert_rule_test entry of a unit-test file.

    An entry runs from its `alertname:` to the next one (or the next test /
    the end); it expects no alert when it says `exp_alerts: []`.
    """
    cases = []
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"alertname:\s*([A-Za-z0-9_]+)", text)]
    ends = [s for s, _ in starts[1:]] + [len(text)]
    for (s, name), e in zip(starts, ends):
        chunk = text[s:e]
        chunk = re.split(r"^\s*- (?:name|interval):", chunk, flags=re.M)[0]
        if "exp_alerts" not in chunk:
            fail("test case for %s has no exp_alerts" % name)
        cases.append((name, not re.search(r"exp_alerts:\s*\[\s*\]", chunk)))
    return cases


def main():
    if len(sys.argv) != 2:
        fail("usage: promtool_test.py DEPLOY_PROMETHEUS_DIR")
    d = sys.argv[1]
    if shutil.which("promtool") is None:
        print("SKIP: promtool is not installed (Debian package prometheus; scripts/setup installs it)")
        sys.exit(77)
    config = os.path.join(d, "prometheus.yml")
    rule_files = sorted(f for f in glob.glob(os.path.join(d, "*.yml"))
                        if f != config and "test" not in os.path.basename(f))
    test_files = sorted(glob.glob(os.path.join(d, "*test*.yml")))
    if not rule_files or not test_files:
        fail("no rule files or no unit-test files in " + d)

    run(["promtool", "check", "config", config])
    run(["promtool", "check", "rules"] + rule_files)
    run(["promtool", "test", "rules"] + test_files)

    # Every rule file is loaded by the configuration.
    config_text = open(config).read()
    for f in rule_files:
        if os.path.basename(f) not in config_text:
            fail("%s is not among prometheus.yml's rule_files" % os.path.basename(f))

    alerts = []
    for f in rule_files:
        for name, block in alert_blocks(open(f).read()):
            if not re.search(r"^\s*runbook:\s*\S", block, re.M):
                fail("alert %s (%s) has no runbook annotation" % (name, os.path.basename(f)))
            alerts.append(name)
    if not alerts:
        fail("no alerts found")
    cases = []
    for f in test_files:
        cases += test_cases(open(f).read())
    for name in alerts:
        if (name, True) not in cases:
            fail("no unit test where %s fires" % name)
        if (name, False) not in cases:
            fail("no unit test where %s does not fire" % name)
    unknown = sorted({n for n, _ in cases} - set(alerts))
    if unknown:
        fail("unit tests name unknown alerts: " + ", ".join(unknown))
    print("promtool_test: ok: %d alerts, each with a runbook, firing and not firing in %d cases"
          % (len(alerts), len(cases)))


if __name__ == "__main__":
    main()
