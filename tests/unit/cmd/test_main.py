"""The virtstack command: help everywhere, and start-up refusing bad
configuration with one line that names what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

EXE = os.path.join(os.path.dirname(sys.executable), "virtstack")

SUBCOMMANDS = ["up", "api", "compute", "db", "db upgrade", "image", "image build-test",
               "image list", "drivers"]


def run(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_subcommand_has_help(sub):
    result = run(*sub.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: virtstack " + sub)
    assert result.stderr == ""


def test_top_level_help_lists_the_commands():
    out = run("--help").stdout
    for name in ("up", "api", "compute", "db", "image", "drivers"):
        assert f"    {name} " in out


def _config(tmp_path, text: str) -> str:
    path = tmp_path / "virtstack.conf"
    path.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\n{text}")
    return str(path)


@pytest.mark.parametrize("text,names", [
    ("[api]\ncompute_port = abc\n", ["[api] compute_port", "abc"]),
    ("[compute]\nsync_power_state_interval = -5\n",
     ["[compute] sync_power_state_interval", "-1"]),
    ("[libvirt]\nvirt_type = xen\n", ["[libvirt] virt_type", "xen"]),
    ("[database]\npersist_flows = perhaps\n", ["[database] persist_flows"]),
])
def test_a_bad_value_stops_start_up_naming_the_option(tmp_path, text, names):
    conf = _config(tmp_path, text)
    result = run("--config-file", conf, "up")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("virtstack: error: ")
    for name in names:
        assert name in lines[0]
    assert conf in lines[0]
    assert not (tmp_path / "virtstack.sqlite").exists(), "nothing started"


def test_an_unknown_driver_names_the_available_ones(tmp_path):
    result = run("--config-file", _config(tmp_path, "[compute]\ncompute_driver = hyperv\n"),
                 "up")
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "hyperv" in line and "fake" in line and "libvirt" in line


def test_a_missing_config_file_is_one_line(tmp_path):
    result = run("--config-file", str(tmp_path / "nope.conf"), "up")
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "nope.conf" in line


def test_drivers_lists_the_registry():
    out = run("drivers").stdout.splitlines()
    names = [line.split("\t")[0] for line in out]
    assert names == sorted(names) and {"fake", "libvirt"} <= set(names)


def test_db_upgrade_creates_the_schema_and_seeds_flavors(tmp_path):
    conf = _config(tmp_path, "[compute]\ncompute_driver = fake\n")
    first = run("--config-file", conf, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert "7 default flavors added" in first.stdout
    again = run("--config-file", conf, "db", "upgrade")
    assert "0 default flavors added" in again.stdout
