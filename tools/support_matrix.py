#!/usr/bin/env python3
"""Generate docs/support-matrix.md from the driver contract suite.

Runs tests/unit/virt/test_driver_contract.py in this process, records each
test's outcome with its ``operation`` marker and driver, and sets that
against what each driver class declares in ``capabilities``. The file is
never edited by hand: change a driver or the suite, then run

    python tools/support_matrix.py           # write docs/support-matrix.md
    python tools/support_matrix.py --check   # exit 1 with a diff if it is stale

CI does not run the suite a second time for this: ``run-tests.sh`` loads
this module as a pytest plugin (``-p support_matrix`` with ``tools`` on the
path), which records the outcomes of the main run into the file named by
``--support-matrix-results``; ``--check --results FILE`` then renders from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing it

import pytest  # noqa: E402

from virtstack.virt.driver import OPERATIONS, capability_key, driver_class  # noqa: E402

SUITE = "tests/unit/virt/test_driver_contract.py"
OUTPUT = ROOT / "docs" / "support-matrix.md"

LEGEND = """\
- **supported**: declared in the driver's `capabilities`, and every contract test of the
  operation passed.
- **partial**: declared, but some of its contract tests failed or were skipped.
- **no**: not declared, and the driver raises `NotSupported` for it.
- **broken**: the declaration and the behaviour disagree (a declared operation raises
  `NotSupported`, an undeclared one does not), or no passing test proves the operation.
"""


@dataclasses.dataclass
class ContractTest:
    operation: str
    driver: str
    declaration: bool  # the test of the declaration itself, not of behaviour
    outcome: str | None = None  # "passed", "failed", "skipped"; None if it never ran
    #: What the driver instance under test declared (drivers may vary their
    #: capabilities by configuration); None if the test never got that far.
    declared: bool | None = None


class ContractCollector:
    """pytest plugin: every contract test's operation, driver and outcome."""

    def __init__(self) -> None:
        self.tests: dict[str, ContractTest] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker("operation")
            params = getattr(getattr(item, "callspec", None), "params", {})
            if marker is not None and "driver" in params:
                self.tests[item.nodeid] = ContractTest(
                    marker.args[0], params["driver"], bool(marker.kwargs.get("declaration")))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        test = self.tests.get(report.nodeid)
        if test is None:
            return
        declared = dict(report.user_properties).get("declared")
        if declared is not None:
            test.declared = bool(declared)
        if report.failed:
            test.outcome = "failed"
        elif report.skipped and test.outcome != "failed":
            test.outcome = "skipped"
        elif report.when == "call" and test.outcome is None:
            test.outcome = "passed"


# -- as a plugin of the main pytest run ---------------------------------------

def pytest_addoption(parser) -> None:
    parser.addoption("--support-matrix-results", default=None, metavar="FILE",
                     help="write every driver contract test's outcome to FILE (JSON)")


def pytest_configure(config) -> None:
    path = config.getoption("--support-matrix-results")
    if path:
        config.pluginmanager.register(_ResultsWriter(path), "support-matrix-results")


class _ResultsWriter(ContractCollector):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def pytest_sessionfinish(self, session) -> None:
        with open(self.path, "w") as f:
            json.dump([dataclasses.asdict(t) for t in self.tests.values()], f)


def load_results(path: str) -> list[ContractTest]:
    with open(path) as f:
        return [ContractTest(**entry) for entry in json.load(f)]


def verdict(declared: bool, tests: list[ContractTest]) -> str:
    """One cell's word for a driver's operation; see LEGEND."""
    declarations = [t for t in tests if t.declaration]
    behaviour = [t for t in tests if not t.declaration]
    if not declarations or any(t.outcome != "passed" for t in declarations):
        return "broken"
    if not declared:
        return "no" if all(t.outcome == "skipped" for t in behaviour) else "broken"
    if behaviour and all(t.outcome == "passed" for t in behaviour):
        return "supported"
    if any(t.outcome == "passed" for t in behaviour) or (
            behaviour and all(t.outcome == "skipped" for t in behaviour)):
        return "partial"
    return "broken"


def render(tests: list[ContractTest]) -> str:
    drivers = list(dict.fromkeys(t.driver for t in tests))
    lines = [
        "> Generated by `python tools/support_matrix.py` from the driver contract suite. "
        "Do not edit this file: change a driver or the suite and run the tool again.",
        "",
        "# Compute driver support matrix",
        "",
        f"Each cell is followed by the number of contract tests (`{SUITE}`) that passed "
        "for that driver and operation. Declarations are those of the driver as the suite "
        "configures it: `powervm` runs on its fake REST session, where it declares "
        "`snapshot` (on real NovaLink it does not yet: see docs/powervm.md).",
        "",
        "| Operation | Methods | " + " | ".join(drivers) + " |",
        "| --- | --- | " + " | ".join("---" for _ in drivers) + " |",
    ]
    for op, methods in OPERATIONS.items():
        cells = []
        for name in drivers:
            proving = [t for t in tests if t.driver == name and t.operation == op]
            seen = {t.declared for t in proving if t.declared is not None}
            # The instance the suite ran declares it (as configured there);
            # the class's default when no test got as far as asking.
            declared = (seen == {True}) if seen else bool(
                driver_class(name).capabilities.get(capability_key(op)))
            passed = sum(t.outcome == "passed" for t in proving)
            cells.append(f"{verdict(declared, proving)} ({passed})")
        lines.append(f"| {op} | " + ", ".join(f"`{m}`" for m in methods) + " | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + LEGEND


def generate() -> str:
    collector = ContractCollector()
    code = pytest.main([str(ROOT / SUITE), "-q", "-p", "no:cacheprovider",
                        f"--rootdir={ROOT}"], plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not collector.tests:
        raise SystemExit(f"support_matrix: the contract suite did not run (pytest exit {code})")
    return render(list(collector.tests.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 with a diff if docs/support-matrix.md is out of date")
    parser.add_argument("--results", metavar="FILE",
                        help="render from outcomes a pytest run recorded (--support-matrix-results) "
                             "instead of running the contract suite")
    args = parser.parse_args(argv)
    if args.results:
        tests = load_results(args.results)
        if not tests:
            raise SystemExit(f"support_matrix: {args.results} holds no contract test outcomes")
        generated = render(tests)
    else:
        generated = generate()
    relative = OUTPUT.relative_to(ROOT)
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current == generated:
            print(f"{relative} is up to date")
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            current.splitlines(keepends=True), generated.splitlines(keepends=True),
            f"{relative} (on disk)", f"{relative} (generated)"))
        print(f"{relative} is out of date: run python tools/support_matrix.py", file=sys.stderr)
        return 1
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(generated)
    print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
