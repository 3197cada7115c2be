"""Summarise a Tempest run per module family: pass / fail / skip counts,
the reason of each skip group, and the failures.

Inputs (written by tools/run-tempest.sh):
  --list FILE     the test ids selected (``tempest run --list-tests``), one a line
  --csv FILE      ``stestr last --subunit | subunit2csv`` (test,status,...)
  --console FILE  the run's console output (``... SKIPPED: reason`` lines)
  --excluded FILE the tests excluded as not applicable (optional)

A class whose setUpClass was skipped or failed reports one line for the
class; each of the class's selected tests is counted with that outcome, so
the counts are per test. Writes Markdown (``--markdown``) and JSON
(``--json``); prints the table. Exits 1 if any test failed.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import re
import sys

#: (label, test id prefix), most specific first.
FAMILIES = (
    ("compute.servers", "tempest.api.compute.servers."),
    ("compute.volumes", "tempest.api.compute.volumes."),
    ("compute.flavors", "tempest.api.compute.flavors."),
    ("volume", "tempest.api.volume."),
    ("image", "tempest.api.image."),
)

_CLASS_FIXTURE = re.compile(r"^(setUpClass|tearDownClass) \((?P<cls>[\w.]+)\)$")
_SKIP_LINE = re.compile(r"^\{\d+\} (?P<test>\S+(?: \([\w.]+\))?)(?: \[[\d.]+s\])? \.\.\. "
                        r"SKIPPED: (?P<reason>.*)$")


def family(test_id: str) -> str | None:
    for label, prefix in FAMILIES:
        if test_id.startswith(prefix):
            return label
    return None


def strip_attrs(test_id: str) -> str:
    """The id without Tempest's ``[id-...,smoke]`` suffix."""
    return test_id.split("[", 1)[0]


def class_of(test_id: str) -> str:
    return strip_attrs(test_id).rsplit(".", 1)[0]


def read_lines(path: str | None) -> list[str]:
    if not path:
        return []
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def outcomes(selected: list[str], rows: list[dict[str, str]]) -> dict[str, str]:
    """test id (without attributes) -> 'pass' | 'fail' | 'skip'. A failed
    tearDownClass (cleanup) is an extra failing entry of its own."""
    status = {"success": "pass", "xfail": "pass", "skip": "skip", "fail": "fail",
              "failure": "fail", "uxsuccess": "fail", "error": "fail"}
    result: dict[str, str] = {}
    set_up: dict[str, str] = {}
    for row in rows:
        test, outcome = row["test"], status.get(row["status"], "fail")
        fixture = _CLASS_FIXTURE.match(test)
        if fixture and fixture.group(1) == "setUpClass":
            if set_up.get(fixture.group("cls")) != "fail":
                set_up[fixture.group("cls")] = outcome
        elif fixture:
            if outcome == "fail":
                result[test] = "fail"
        else:
            result[strip_attrs(test)] = outcome
    for test in selected:
        key = strip_attrs(test)
        if key not in result:
            # Not run: its class was skipped or failed to set up; never
            # reported at all means its worker died.
            result[key] = set_up.get(class_of(test), "fail")
    return result


def skip_reasons(console_lines: list[str], selected: list[str]) -> dict[str, list[str]]:
    """reason -> test ids (class-level skips expanded to the class's tests)."""
    by_class = collections.defaultdict(list)
    for test in selected:
        by_class[class_of(test)].append(strip_attrs(test))
    # A class split over two workers reports its setUpClass skip twice:
    # each test gets one reason.
    reason_of: dict[str, str] = {}
    for line in console_lines:
        m = _SKIP_LINE.match(line)
        if not m:
            continue
        test, reason = m.group("test"), m.group("reason").strip()
        fixture = _CLASS_FIXTURE.match(test)
        for one in (by_class.get(fixture.group("cls"), []) if fixture
                    else [strip_attrs(test)]):
            reason_of.setdefault(one, reason)
    reasons: dict[str, list[str]] = collections.defaultdict(list)
    for test, reason in reason_of.items():
        reasons[reason].append(test)
    return reasons


def summarise(selected, rows, console_lines, excluded):
    result = outcomes(selected, rows)
    counts = {label: collections.Counter() for label, _ in FAMILIES}
    for test, outcome in result.items():
        fixture = _CLASS_FIXTURE.match(test)
        label = family(fixture.group("cls") + "." if fixture else test)
        if label:
            counts[label][outcome] += 1
    for test in excluded:
        label = family(test)
        if label:
            counts[label]["excluded"] += 1
    reasons = skip_reasons(console_lines, selected)
    failures = sorted(t for t, o in result.items() if o == "fail")
    return counts, reasons, failures


def markdown(counts, reasons, failures) -> str:
    lines = ["| module | pass | fail | skip | excluded (n/a) |", "|---|---:|---:|---:|---:|"]
    total = collections.Counter()
    for label, c in counts.items():
        total.update(c)
        lines.append(f"| {label} | {c['pass']} | {c['fail']} | {c['skip']} | {c['excluded']} |")
    lines.append(f"| **total** | **{total['pass']}** | **{total['fail']}** | "
                 f"**{total['skip']}** | **{total['excluded']}** |")
    lines += ["", "Skips by reason (tests):", ""]
    for reason, tests in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"- {len(tests)}: {reason}")
    if failures:
        lines += ["", "Failures:", ""] + [f"- {t}" for t in failures]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--console")
    parser.add_argument("--excluded")
    parser.add_argument("--markdown")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    selected = [t for t in read_lines(args.list) if t.startswith("tempest.")]
    with open(args.csv) as f:
        rows = list(csv.DictReader(f))
    console = read_lines(args.console)
    excluded = read_lines(args.excluded)
    counts, reasons, failures = summarise(selected, rows, console, excluded)
    text = markdown(counts, reasons, failures)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"counts": {k: dict(v) for k, v in counts.items()},
                       "skip_reasons": {r: len(t) for r, t in reasons.items()},
                       "failures": failures}, f, indent=2)
    sys.stdout.write(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
