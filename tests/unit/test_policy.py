"""virtstack.policy and virtstack.policies: the registered defaults, what
they allow each role, the 403 they raise, the policy file, and the
generated sample."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import yaml
from oslo_policy import policy as oslo_policy

from virtstack import context, exception, policies, policy

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _ctxt(project: str, *roles: str) -> context.RequestContext:
    return context.RequestContext(user_id=f"{project}-user", project_id=project,
                                  roles=list(roles), overwrite=False)


ADMIN = _ctxt("admin", "admin", "member", "reader")
MEMBER = _ctxt("demo", "member", "reader")
READER = _ctxt("demo", "reader")
NOBODY = _ctxt("demo")
#: Caller -> allowed? for rules with each default, acting on project demo.
MATRIX = {
    "os_compute_api:servers:show": {ADMIN: True, MEMBER: True, READER: True, NOBODY: False},
    "os_compute_api:servers:create": {ADMIN: True, MEMBER: True, READER: False, NOBODY: False},
    "os_compute_api:os-hypervisors:list": {ADMIN: True, MEMBER: False, READER: False,
                                           NOBODY: False},
    "os_compute_api:flavors:index": {ADMIN: True, MEMBER: True, READER: True, NOBODY: True},
    "volume:get": {ADMIN: True, MEMBER: True, READER: True, NOBODY: False},
    "volume:create": {ADMIN: True, MEMBER: True, READER: False, NOBODY: False},
    "volume_extension:volume_admin_actions:reset_status": {ADMIN: True, MEMBER: False,
                                                           READER: False, NOBODY: False},
    "add_image": {ADMIN: True, MEMBER: True, READER: False, NOBODY: False},
    "publicize_image": {ADMIN: True, MEMBER: False, READER: False, NOBODY: False},
    "identity:create_project": {ADMIN: True, MEMBER: False, READER: False, NOBODY: False},
}


def test_rules_are_unique_documented_and_parse():
    rules = policies.list_rules()
    names = [r.name for r in rules]
    assert len(names) == len(set(names)) > 100
    for rule in rules:
        assert rule.description and rule.description.strip(), rule.name
        assert not isinstance(rule.check, oslo_policy._checks.FalseCheck), rule.name
        if isinstance(rule, oslo_policy.DocumentedRuleDefault):
            assert rule.operations and all(op["method"] in (
                "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD") for op in rule.operations)
            assert rule.scope_types == ["project"], rule.name
    # Every API has its rules, under the names its OpenStack service uses.
    for name in ("os_compute_api:servers:create", "volume:create", "add_image",
                 "volume_extension:volume_admin_actions:reset_status", "publicize_image",
                 "identity:create_project"):
        assert name in names


def test_rules_refer_only_to_registered_rules():
    names = {r.name for r in policies.list_rules()}
    for rule in policies.list_rules():
        for ref in _referenced(rule.check):
            assert ref in names, (rule.name, ref)


def _referenced(check) -> set[str]:
    found = set()
    if isinstance(check, oslo_policy._checks.RuleCheck):
        found.add(check.match)
    for child in getattr(check, "rules", []):
        found |= _referenced(child)
    if hasattr(check, "rule"):
        found |= _referenced(check.rule)
    return found


@pytest.mark.parametrize("rule", sorted(MATRIX))
def test_defaults_per_role(conf, rule):
    got = {caller: policy.check(caller, rule, {"project_id": "demo"}) for caller in MATRIX[rule]}
    assert got == MATRIX[rule]


def test_project_rules_need_the_target_project(conf):
    other = {"project_id": "other"}
    assert policy.check(MEMBER, "volume:get", {"project_id": "demo"})
    assert not policy.check(MEMBER, "volume:get", other)
    assert not policy.check(MEMBER, "volume:create", other)
    assert policy.check(ADMIN, "volume:create", other)
    # Without a target: the caller's own project.
    assert policy.check(MEMBER, "volume:create")


def test_authorize_raises_forbidden_naming_the_rule(conf):
    policy.authorize(ADMIN, "os_compute_api:os-hypervisors:list")
    with pytest.raises(exception.Forbidden) as raised:
        policy.authorize(MEMBER, "os_compute_api:os-hypervisors:list")
    assert raised.value.code == 403
    assert raised.value.format_message() == (
        "Policy doesn't allow os_compute_api:os-hypervisors:list to be performed.")


def test_an_unregistered_rule_is_a_bug(conf):
    with pytest.raises(oslo_policy.PolicyNotRegistered):
        policy.authorize(ADMIN, "os_compute_api:no-such-rule")


def test_identity_rules_use_keystone_targets(conf):
    me = context.RequestContext(user_id="u1", project_id="p1", roles=["member", "reader"],
                                user_domain_id="default", project_domain_id="default",
                                overwrite=False)
    assert policy.check(me, "identity:get_user", {"target.user.id": "u1"})
    assert not policy.check(me, "identity:get_user", {"target.user.id": "u2"})
    assert policy.check(me, "identity:get_project", {"target.project.id": "p1"})
    assert not policy.check(me, "identity:get_project", {"target.project.id": "p2"})
    assert policy.check(me, "identity:get_domain", {"target.domain.id": "default"})
    assert not policy.check(me, "identity:get_domain", {"target.domain.id": "other"})
    assert policy.check(me, "identity:validate_token", {"target.token.user_id": "u1"})
    assert not policy.check(me, "identity:validate_token", {"target.token.user_id": "u2"})
    assert policy.check(ADMIN, "identity:get_user", {"target.user.id": "u2"})


def test_policy_file_overrides_named_rules_only(conf, tmp_path):
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump({"os_compute_api:os-hypervisors:list": "role:member",
                                    "volume:create": "!"}))
    conf.config(policy_file=str(path), group="oslo_policy")
    policy.reset()
    assert policy.check(MEMBER, "os_compute_api:os-hypervisors:list")
    assert not policy.check(ADMIN, "volume:create")
    assert not policy.check(MEMBER, "os_compute_api:os-hypervisors:show")  # a default
    assert policy.check(MEMBER, "os_compute_api:servers:create")           # a default


def test_policy_yaml_is_found_beside_the_config_file(conf, tmp_path):
    """The default policy_file, policy.yaml, is looked up in the config
    file's directory."""
    (tmp_path / "virtstack.conf").write_text("[DEFAULT]\n")
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump({"volume:create": "!"}))
    from virtstack.conf import CONF

    CONF(["--config-file", str(tmp_path / "virtstack.conf")], project="virtstack",
         default_config_files=[])
    policy.reset()
    assert CONF.oslo_policy.policy_file == "policy.yaml"
    assert not policy.check(MEMBER, "volume:create")
    assert policy.check(MEMBER, "volume:delete")


def test_context_admin_comes_from_the_role_not_the_policy(conf, tmp_path):
    # DB scoping (is_admin) follows the admin role whatever a file says.
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"admin_api": "role:member"}))
    conf.config(policy_file=str(path), group="oslo_policy")
    policy.reset()
    assert policy.check(MEMBER, "os_compute_api:os-hypervisors:list")
    assert MEMBER.is_admin is False and ADMIN.is_admin is True


def test_sample_policy_file_is_current(tmp_path):
    out = tmp_path / "policy.yaml.sample"
    subprocess.run([str(pathlib.Path(sys.executable).parent / "oslopolicy-sample-generator"),
                    "--namespace", "virtstack", "--output-file", str(out)],
                   check=True, cwd=ROOT, capture_output=True)
    generated = out.read_text()
    assert "os_compute_api:servers:create" in generated
    assert generated == (ROOT / "etc" / "policy.yaml.sample").read_text(), (
        "etc/policy.yaml.sample is stale: .venv/bin/oslopolicy-sample-generator "
        "--namespace virtstack --output-file etc/policy.yaml.sample")


def test_get_enforcer_serves_the_oslopolicy_tools(tmp_path):
    """oslopolicy-policy-generator loads the enforcer through the
    ``oslo.policy.enforcer`` entry point and prints the effective rules."""
    out = tmp_path / "effective.yaml"
    subprocess.run([str(pathlib.Path(sys.executable).parent / "oslopolicy-policy-generator"),
                    "--namespace", "virtstack", "--output-file", str(out)],
                   check=True, cwd=tmp_path, capture_output=True)
    effective = yaml.safe_load(out.read_text())
    assert effective["os_compute_api:os-hypervisors:list"] == "rule:admin_api"
    assert len(effective) == len(policies.list_rules())
