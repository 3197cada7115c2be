"""Request-body validation with JSON Schema, and the parameter types the
OpenStack APIs share. Errors name the field and what was wrong."""

from __future__ import annotations

from typing import Any

import jsonschema

from virtstack import exception

# Patterns end in \Z, not $: jsonschema matches them with Python's
# re.search, where $ also matches just before a trailing newline.
name = {"type": "string", "minLength": 1, "maxLength": 255,
        # No leading or trailing whitespace, as Nova requires.
        "pattern": r"^(?![\s])[\s\S]*(?<![\s])\Z"}
description = {"type": ["string", "null"], "maxLength": 255}
positive_integer = {"type": ["integer", "string"], "pattern": r"^[0-9]*\Z", "minimum": 1,
                    "minLength": 1}
non_negative_integer = {"type": ["integer", "string"], "pattern": r"^[0-9]*\Z", "minimum": 0,
                        "minLength": 1}
metadata = {"type": "object",
            "patternProperties": {r"^[a-zA-Z0-9-_:. ]{1,255}\Z": {"type": "string",
                                                                  "maxLength": 255}},
            "additionalProperties": False}
ipv4 = {"type": "string", "format": "ipv4"}
ipv6 = {"type": "string", "format": "ipv6"}


def validate(schema: dict[str, Any], body: Any) -> None:
    """Raise ``ValidationError`` (400) naming the first field that is wrong."""
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is None:
        return
    field = "/".join(str(p) for p in error.path) or "request body"
    if error.validator == "additionalProperties":
        reason = error.message.replace("were unexpected", "are not allowed").replace(
            "was unexpected", "is not allowed")
    elif error.validator == "required":
        reason = error.message
    elif error.validator == "pattern" and error.schema is name:
        reason = "must not be empty or start or end with whitespace"
    else:
        reason = f"{error.message}. Value: {error.instance!r}" if not isinstance(
            error.instance, (dict, list)) else error.message
    raise exception.ValidationError(field=field, reason=reason)


def to_int(value: Any, field: str, minimum: int = 0) -> int:
    """A query parameter as an int of at least ``minimum``; 400 otherwise."""
    try:
        number = int(str(value), 10)
    except ValueError:
        raise exception.ValidationError(field=field, reason=f"'{value}' is not an integer")
    if number < minimum:
        raise exception.ValidationError(field=field, reason=f"must be at least {minimum}")
    return number


def to_bool(value: Any, field: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "t", "yes", "y", "on"):
        return True
    if text in ("0", "false", "f", "no", "n", "off"):
        return False
    raise exception.ValidationError(field=field, reason=f"'{value}' is not a boolean")
