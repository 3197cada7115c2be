"""Identity rows on every database backend: unique names, grants, deletes
that take their assignments along, revocations."""

from __future__ import annotations

import datetime

import pytest

from virtstack import exception
from virtstack.db import identity as db_identity

pytestmark = pytest.mark.db


@pytest.fixture
def rows(any_database):
    db_identity.ensure_domain("default", "Default")
    for name in ("admin", "member", "reader"):
        db_identity.create_role({"id": f"r-{name}", "name": name})
    db_identity.add_implied_role("r-admin", "r-member")
    db_identity.add_implied_role("r-member", "r-reader")
    db_identity.create_project({"id": "p1", "name": "one", "domain_id": "default"})
    db_identity.create_user({"id": "u1", "name": "alice", "domain_id": "default",
                             "password_hash": "bcrypt-sha256$x"})
    return any_database


def test_names_are_unique_per_kind(rows):
    assert not db_identity.ensure_domain("default", "Default")
    with pytest.raises(exception.IdentityConflict):
        db_identity.create_project({"id": "p2", "name": "one", "domain_id": "default"})
    with pytest.raises(exception.IdentityConflict):
        db_identity.create_user({"id": "u2", "name": "alice", "domain_id": "default"})
    with pytest.raises(exception.IdentityConflict):
        db_identity.create_role({"id": "r2", "name": "member"})
    with pytest.raises(exception.DomainNotFound):
        db_identity.create_project({"id": "p3", "name": "x", "domain_id": "nope"})
    # A user and a project may share a name.
    db_identity.create_project({"id": "p4", "name": "alice", "domain_id": "default"})


def test_grants_and_implied_roles(rows):
    assert db_identity.grant("u1", "p1", "r-admin")
    assert not db_identity.grant("u1", "p1", "r-admin")
    assert [r.name for r in db_identity.effective_roles("u1", "p1")] == \
        ["admin", "member", "reader"]
    assert not db_identity.add_implied_role("r-admin", "r-member")
    # A cycle does not loop.
    db_identity.add_implied_role("r-reader", "r-admin")
    assert len(db_identity.effective_roles("u1", "p1")) == 3
    assert [p.id for p in db_identity.projects_of_user("u1")] == ["p1"]
    with pytest.raises(exception.RoleNotFound):
        db_identity.grant("u1", "p1", "nope")
    db_identity.revoke_grant("u1", "p1", "r-admin")
    with pytest.raises(exception.RoleAssignmentNotFound):
        db_identity.revoke_grant("u1", "p1", "r-admin")
    assert db_identity.effective_roles("u1", "p1") == []


@pytest.mark.parametrize("delete", [
    lambda: db_identity.delete_user("u1"),
    lambda: db_identity.delete_project("p1"),
    lambda: db_identity.delete_role("r-member"),
])
def test_deletes_take_their_assignments(rows, delete):
    db_identity.grant("u1", "p1", "r-member")
    delete()
    assert db_identity.list_assignments() == []


def test_token_subject_and_revocations(rows):
    db_identity.grant("u1", "p1", "r-member")
    subject = db_identity.load_token_subject("u1", "p1", ["a1", "a0"])
    assert subject.user.name == "alice" and subject.project.name == "one"
    assert subject.user_domain.name == "Default" and not subject.revoked
    assert [r.name for r in subject.roles] == ["member", "reader"]
    expires = datetime.datetime(2030, 1, 1)
    db_identity.revoke_token("a0", expires)
    db_identity.revoke_token("a0", expires)
    assert db_identity.load_token_subject("u1", "p1", ["a1", "a0"]).revoked
    assert not db_identity.load_token_subject("u1", "p1", ["a2"]).revoked
    missing = db_identity.load_token_subject("nobody", "nowhere", ["a3"])
    assert missing.user is None and missing.project is None and missing.roles == []
    assert db_identity.prune_revocations(expires + datetime.timedelta(seconds=1)) == 1
    assert not db_identity.load_token_subject("u1", "p1", ["a0"]).revoked
