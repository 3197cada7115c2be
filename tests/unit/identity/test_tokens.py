"""The token provider: signed, expiring, revocable tokens; the key
repository they are signed with."""

from __future__ import annotations

import base64
import datetime
import os
import stat

import orjson
import pytest
from cryptography import fernet

from virtstack import exception
from virtstack.db import identity as db_identity
from virtstack.identity import keys, tokens


class Clock:
    def __init__(self):
        self.now = datetime.datetime(2026, 1, 1, 12, 0, 0)

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)


@pytest.fixture
def subject(database):
    """A user with the member role on a project (member implies reader)."""
    db_identity.ensure_domain("default", "Default")
    for role in ("member", "reader"):
        db_identity.create_role({"id": f"{role}-id", "name": role})
    db_identity.add_implied_role("member-id", "reader-id")
    db_identity.create_project({"id": "p1", "name": "one", "domain_id": "default"})
    db_identity.create_user({"id": "u1", "name": "alice", "domain_id": "default"})
    db_identity.grant("u1", "p1", "member-id")
    return "u1", "p1"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def repo(tmp_path):
    return keys.KeyRepository(str(tmp_path / "fernet-keys"), max_active_keys=3)


@pytest.fixture
def provider(repo, clock, subject):
    return tokens.TokenProvider(repo, 3600, clock=clock)


def test_issue_and_validate(provider, clock):
    token_id, payload = provider.issue("u1", "p1", ["password"])
    assert payload.user_id == "u1" and payload.project_id == "p1"
    assert payload.methods == ("password",)
    assert payload.issued_at == clock.now
    assert payload.expires_at == clock.now + datetime.timedelta(seconds=3600)
    assert len(payload.audit_ids) == 1
    valid = provider.validate(token_id)
    assert valid.payload == payload
    assert valid.user.name == "alice" and valid.project.name == "one"
    # Roles are read at validation, implied ones included.
    assert valid.role_names == ["member", "reader"]
    assert provider.decode(token_id) == payload


def test_token_expires(provider, clock):
    token_id, _ = provider.issue("u1", "p1", ["password"])
    clock.advance(3599)
    assert provider.validate(token_id)
    clock.advance(1)
    with pytest.raises(exception.TokenNotFound):
        provider.validate(token_id)
    with pytest.raises(exception.TokenNotFound):
        provider.decode(token_id)


def test_expiration_follows_the_provider(repo, clock, subject):
    short = tokens.TokenProvider(repo, 60, clock=clock)
    _, payload = short.issue("u1", None, ["password"])
    assert payload.expires_at - payload.issued_at == datetime.timedelta(seconds=60)


def test_tampered_and_forged_tokens_are_refused(provider, tmp_path, clock):
    token_id, _ = provider.issue("u1", "p1", ["password"])
    for index in (0, 10, len(token_id) // 2, len(token_id) - 2):
        flipped = "A" if token_id[index] != "A" else "B"
        tampered = token_id[:index] + flipped + token_id[index + 1:]
        with pytest.raises(exception.TokenNotFound):
            provider.validate(tampered)
    # Signed with another cloud's keys: refused.
    other = tokens.TokenProvider(keys.KeyRepository(str(tmp_path / "other")), 3600, clock=clock)
    forged, _ = other.issue("u1", "p1", ["password"])
    with pytest.raises(exception.TokenNotFound):
        provider.validate(forged)
    for garbage in ("", "x", "gAAAAA", "é" * 10, "u1:p1"):
        with pytest.raises(exception.TokenNotFound):
            provider.validate(garbage)


def test_the_payload_is_encrypted(provider):
    token_id, payload = provider.issue("u1", "p1", ["password"])
    raw = base64.urlsafe_b64decode(token_id + "==")
    assert b"u1" not in raw and payload.audit_id.encode() not in raw


def test_revocation(provider):
    token_id, payload = provider.issue("u1", "p1", ["password"])
    other_id, _ = provider.issue("u1", "p1", ["password"])
    provider.revoke(payload)
    provider.revoke(payload)  # idempotent
    with pytest.raises(exception.TokenNotFound):
        provider.validate(token_id)
    assert provider.validate(other_id)


def test_revoking_a_token_revokes_its_descendants(provider, clock):
    root_id, root = provider.issue("u1", None, ["password"])
    clock.advance(10)
    child_id, child = provider.issue("u1", "p1", ["token"], parent=root)
    grandchild_id, grandchild = provider.issue("u1", "p1", ["token"], parent=child)
    assert child.expires_at == root.expires_at == grandchild.expires_at
    assert grandchild.audit_ids == (grandchild.audit_id, child.audit_id, root.audit_id)
    assert grandchild.audit_chain_id == root.audit_id
    provider.revoke(child)
    assert provider.validate(root_id)
    for token_id in (child_id, grandchild_id):
        with pytest.raises(exception.TokenNotFound):
            provider.validate(token_id)


def test_chains_are_bounded(provider):
    _, payload = provider.issue("u1", None, ["password"])
    for _ in range(tokens.MAX_CHAIN - 1):
        _, payload = provider.issue("u1", None, ["token"], parent=payload)
    with pytest.raises(exception.AuthenticationFailed):
        provider.issue("u1", None, ["token"], parent=payload)


def test_what_the_token_names_is_checked_at_validation(provider):
    token_id, _ = provider.issue("u1", "p1", ["password"])
    unscoped_id, _ = provider.issue("u1", None, ["password"])
    db_identity.revoke_grant("u1", "p1", "member-id")
    with pytest.raises(exception.TokenNotFound):
        provider.validate(token_id)
    assert provider.validate(unscoped_id).project is None
    db_identity.update_user("u1", {"enabled": False})
    with pytest.raises(exception.TokenNotFound):
        provider.validate(unscoped_id)


def test_pruning_forgets_only_expired_revocations(provider, clock):
    _, first = provider.issue("u1", "p1", ["password"])
    clock.advance(1800)
    second_id, second = provider.issue("u1", "p1", ["password"])
    provider.revoke(first)
    provider.revoke(second)
    assert db_identity.prune_revocations(first.expires_at + datetime.timedelta(seconds=1)) == 1
    with pytest.raises(exception.TokenNotFound):
        provider.validate(second_id)


def test_key_repository_is_private(repo):
    repo.fernet()
    assert stat.S_IMODE(os.stat(repo.path).st_mode) == 0o700
    key_files = sorted(n for n in os.listdir(repo.path) if n.isdigit())
    assert key_files == ["0", "1"]
    for name in key_files:
        assert stat.S_IMODE(os.stat(os.path.join(repo.path, name)).st_mode) == 0o600


def test_an_existing_repository_is_tightened(tmp_path):
    path = tmp_path / "keys"
    path.mkdir(mode=0o755)
    keys.KeyRepository(str(path)).fernet()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700


def test_rotation_keeps_recent_tokens_valid_and_drops_old_keys(provider, repo, clock):
    first_id, _ = provider.issue("u1", "p1", ["password"])
    assert repo.rotate() == 2
    second_id, _ = provider.issue("u1", "p1", ["password"])
    assert provider.validate(first_id) and provider.validate(second_id)
    assert sorted(int(n) for n in os.listdir(repo.path) if n.isdigit()) == [0, 1, 2]
    # A second rotation drops key 1 (max_active_keys 3), which signed the first.
    assert repo.rotate() == 3
    assert sorted(int(n) for n in os.listdir(repo.path) if n.isdigit()) == [0, 2, 3]
    with pytest.raises(exception.TokenNotFound):
        provider.validate(first_id)
    assert provider.validate(second_id)


def test_another_process_rotation_is_noticed(provider, repo):
    """Tokens signed after a rotation by another process (another
    repository object on the same directory) validate here."""
    provider.issue("u1", "p1", ["password"])
    elsewhere = keys.KeyRepository(repo.path)
    elsewhere.rotate()
    elsewhere.rotate()
    other = tokens.TokenProvider(elsewhere, 3600, clock=provider.clock)
    token_id, _ = other.issue("u1", "p1", ["password"])
    assert provider.validate(token_id)


def test_staged_key_validates_before_it_signs(provider, repo):
    """Keys are distributed staged: a token signed with the staged key (the
    next primary, already on every host) validates."""
    staged = dict(repo.load())[0]
    _, template = provider.issue("u1", "p1", ["password"])
    raw = orjson.dumps([tokens.PAYLOAD_VERSION, "u1", "p1", ["password"], ["audit-x"],
                        tokens._epoch(template.issued_at), tokens._epoch(template.expires_at)])
    token_id = fernet.Fernet(staged).encrypt(raw).decode()
    assert provider.validate(token_id).payload.audit_id == "audit-x"
