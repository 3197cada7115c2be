"""Password hashing: bcrypt, salted, every character counts, never clear."""

from __future__ import annotations

import pytest

from virtstack import exception
from virtstack.identity import passwords


@pytest.fixture(autouse=True)
def cheap_hashes(conf):
    conf.config(password_hash_rounds=4, group="identity")


def test_hash_verifies_and_is_not_the_password():
    stored = passwords.hash_password("correct horse")
    assert stored.startswith("bcrypt-sha256$$2b$04$")
    assert "correct horse" not in stored
    assert passwords.verify_password("correct horse", stored)
    assert not passwords.verify_password("correct horsE", stored)
    assert not passwords.verify_password("", stored)


def test_hashes_are_salted():
    assert passwords.hash_password("same") != passwords.hash_password("same")


def test_rounds_follow_the_option(conf):
    conf.config(password_hash_rounds=5, group="identity")
    assert passwords.hash_password("x").startswith("bcrypt-sha256$$2b$05$")
    assert passwords.hash_password("x", rounds=6).startswith("bcrypt-sha256$$2b$06$")


def test_characters_past_bcrypts_72_bytes_count():
    # Plain bcrypt ignores (or, since bcrypt 5, refuses) bytes past 72.
    base = "x" * 100
    stored = passwords.hash_password(base + "A")
    assert passwords.verify_password(base + "A", stored)
    assert not passwords.verify_password(base + "B", stored)


def test_unicode_and_the_longest_password():
    longest = "ü" * passwords.MAX_LENGTH
    assert passwords.verify_password(longest, passwords.hash_password(longest))
    assert passwords.verify_password("pässwörd ✓", passwords.hash_password("pässwörd ✓"))


@pytest.mark.parametrize("stored", [None, "", "plain-text", "bcrypt-sha256$broken",
                                    "$2b$04$abcdefghijklmnopqrstuv"])
def test_no_or_unknown_or_corrupt_hash_never_matches(stored):
    assert not passwords.verify_password("plain-text", stored)


@pytest.mark.parametrize("value", ["", None, 42, "p" * (passwords.MAX_LENGTH + 1)])
def test_policy_refuses_empty_long_and_non_strings(value):
    with pytest.raises(exception.ValidationError) as info:
        passwords.check_policy(value, "user/password")
    assert "user/password" in info.value.format_message()
    if isinstance(value, str) and value:
        assert value not in info.value.format_message()
