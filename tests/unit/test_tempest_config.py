"""``virtstack tempest-config``: accounts provisioned in the embedded
identity, an alt copy of the test image, and a tempest.conf whose every
value carries its reason."""

from __future__ import annotations

import configparser
import os
import stat

import pytest
import yaml

from virtstack import exception, tempest_config
from virtstack.db import identity as db_identity
from virtstack.db import image as db_image
from virtstack.identity import passwords


@pytest.fixture
def cloud_db(conf, database, tmp_path):
    """A database with the test image registered from a small local file
    (``register_test_image`` keeps a registered image whose file exists)."""
    from virtstack.image import store

    conf.config(password_hash_rounds=4, group="identity")
    src = tmp_path / "root.qcow2"
    src.write_bytes(b"QFI\xfb" + b"\0" * 4092)
    store.add_file(str(src), store.TEST_IMAGE_NAME, "qcow2",
                   properties={"kernel_id": "k", "ramdisk_id": "r"})
    return tmp_path


def _accounts(path):
    with open(path) as f:
        return yaml.safe_load(f)


def test_plan_puts_members_first_then_readers_then_admins():
    plan = tempest_config.account_plan(4)
    roles = [role for _, _, role in plan]
    assert roles == ["member"] * 4 + ["reader"] * 4 + ["admin"] * 2
    member_projects = [project for _, project, role in plan if role == "member"]
    assert len(set(member_projects)) == 4
    reader_projects = [project for _, project, role in plan if role == "reader"]
    assert reader_projects == member_projects  # a reader beside each primary
    with pytest.raises(exception.Invalid, match="two projects"):
        tempest_config.account_plan(1)


def test_write_provisions_working_accounts_and_private_files(cloud_db):
    out = cloud_db / "tempest"
    result = tempest_config.write(str(out), projects=2)
    accounts = _accounts(result.accounts_path)
    assert [a["username"] for a in accounts] == [
        "tempest-member-1", "tempest-member-2", "tempest-reader-1", "tempest-reader-2",
        "tempest-admin"]
    for path in (result.accounts_path, result.conf_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for entry in accounts:
        user = db_identity.find_user(entry["username"], "default")
        assert passwords.verify_password(entry["password"], user.password_hash)
        project = db_identity.find_project(entry["project_name"], "default")
        role = db_identity.find_role(entry["roles"][0])
        assert db_identity.has_grant(user.id, project.id, role.id)
        assert entry["user_domain_name"] == entry["project_domain_name"] == "Default"
    admin = accounts[-1]
    assert admin["types"] == ["admin"] and "types" not in accounts[0]
    # The alt image is another image with the same bits and boot properties.
    main, alt = db_image.get(result.image_ref), db_image.get(result.image_ref_alt)
    assert main.id != alt.id and alt.status == "active"
    assert alt.checksum == main.checksum and alt.location != main.location
    assert db_image.extra_properties(alt) == db_image.extra_properties(main)


def test_write_again_changes_nothing_and_keeps_passwords(cloud_db):
    out = str(cloud_db / "tempest")
    first = tempest_config.write(out, projects=2)
    before = _accounts(first.accounts_path)
    second = tempest_config.write(out, projects=2)
    assert second.created == []
    assert _accounts(second.accounts_path) == before
    assert second.image_ref_alt == first.image_ref_alt


def test_a_stale_password_in_the_file_is_replaced_by_a_working_one(cloud_db):
    out = str(cloud_db / "tempest")
    first = tempest_config.write(out, projects=2)
    accounts = _accounts(first.accounts_path)
    accounts[0]["password"] = "not-the-password"
    with open(first.accounts_path, "w") as f:
        yaml.safe_dump(accounts, f)
    second = tempest_config.write(out, projects=2)
    assert "password of user tempest-member-1" in second.created
    entry = _accounts(second.accounts_path)[0]
    assert entry["password"] != "not-the-password"
    user = db_identity.find_user("tempest-member-1", "default")
    assert passwords.verify_password(entry["password"], user.password_hash)


def test_conf_has_a_reason_for_every_value_and_matches_the_cloud(cloud_db, conf):
    from virtstack.api import compute as compute_app
    from virtstack.api import volume as volume_app

    conf.config(identity_port=15999, group="api")
    result = tempest_config.write(str(cloud_db / "tempest"), projects=2)
    with open(result.conf_path) as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert lines[i - 1].startswith("# ") and len(lines[i - 1]) > 4, line
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.read(result.conf_path)
    assert parsed["auth"]["use_dynamic_credentials"] == "False"
    assert parsed["auth"]["test_accounts_file"] == result.accounts_path
    assert parsed["auth"]["admin_username"] == "tempest-admin"
    assert parsed["identity"]["uri_v3"] == "http://127.0.0.1:15999/v3"
    assert parsed["identity"]["auth_version"] == "v3"
    assert parsed["compute"]["image_ref"] == result.image_ref
    assert parsed["compute"]["image_ref_alt"] == result.image_ref_alt
    assert "fixed_network_name" not in parsed["compute"]
    assert parsed["compute"]["max_microversion"] == compute_app.MAX_VERSION
    assert parsed["volume"]["max_microversion"] == volume_app.MAX_VERSION
    assert parsed["service_available"]["neutron"] == "False"
    assert parsed["validation"]["run_validation"] == "False"
    features = parsed["compute-feature-enabled"]
    # The fake driver declares these; the API has no resize, rescue or shelve.
    assert features["pause"] == features["suspend"] == features["snapshot"] == "True"
    assert features["resize"] == features["rescue"] == features["shelve"] == "False"
    assert parsed["volume-feature-enabled"]["backup"] == "False"


def test_feature_flags_follow_the_driver_capabilities():
    caps = {"supports_pause": False, "supports_suspend": True}
    flags = {name: value for name, value, _ in tempest_config.compute_features(caps)}
    assert flags["pause"] is False and flags["suspend"] is True
    assert flags["console_output"] is False  # not declared: off


def test_external_keystone_is_refused(conf, database):
    conf.config(mode="keystone", group="identity")
    with pytest.raises(exception.ConfigError, match="Keystone"):
        tempest_config.write()


def test_cli_has_help_and_refuses_one_project_before_creating_anything(tmp_path):
    import subprocess
    import sys

    exe = os.path.join(os.path.dirname(sys.executable), "virtstack")
    out = subprocess.run([exe, "tempest-config", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("usage: virtstack tempest-config")
    conf_path = tmp_path / "virtstack.conf"
    conf_path.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\n[compute]\ncompute_driver = fake\n")
    out = subprocess.run([exe, "--config-file", str(conf_path), "tempest-config",
                          "--projects", "1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "virtstack: error: Invalid input: Tempest needs at least two projects (primary and alt)"]
    assert not (tmp_path / "tempest").exists()


def test_summary_counts_per_test_with_class_outcomes_and_one_reason_each():
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
    import tempest_summary

    base = "tempest.api.compute.servers.test_a."
    selected = [f"{base}A.test_one[id-1]", f"{base}A.test_two[id-2,smoke]",
                f"{base}B.test_three[id-3]", f"{base}B.test_four[id-4]",
                "tempest.api.volume.test_v.V.test_five[id-5]",
                "tempest.api.image.v2.test_i.I.test_six[id-6]"]
    rows = [{"test": f"setUpClass ({base}B)", "status": "skip"},
            {"test": f"{base}A.test_one[id-1]", "status": "success"},
            {"test": f"{base}A.test_two[id-2,smoke]", "status": "fail"},
            {"test": "setUpClass (tempest.api.volume.test_v.V)", "status": "fail"},
            {"test": "tearDownClass (tempest.api.image.v2.test_i.I)", "status": "fail"},
            {"test": "tempest.api.image.v2.test_i.I.test_six[id-6]", "status": "success"}]
    # A class split over two workers reports its skip twice.
    console = [f"{{0}} setUpClass ({base}B) ... SKIPPED: No Neutron",
               f"{{1}} setUpClass ({base}B) ... SKIPPED: No Neutron"]
    counts, reasons, failures = tempest_summary.summarise(
        selected, rows, console, ["tempest.api.image.v2.test_x.X.test_n[id-9]"])
    assert dict(counts["compute.servers"]) == {"pass": 1, "fail": 1, "skip": 2}
    assert dict(counts["volume"]) == {"fail": 1}
    assert dict(counts["image"]) == {"pass": 1, "fail": 1, "excluded": 1}
    assert {r: len(t) for r, t in reasons.items()} == {"No Neutron": 2}
    assert failures == sorted([f"{base}A.test_two", "tempest.api.volume.test_v.V.test_five",
                               "tearDownClass (tempest.api.image.v2.test_i.I)"])
