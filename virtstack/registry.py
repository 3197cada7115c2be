"""What every plug-in registry shares (DESIGN rule 2): built-in names mapped
to ``"module:Class"`` targets, more from an entry-point group, and loading a
target checked against its base class.

Each registry (compute drivers, volume backends, libvirt volume connectors,
PowerVM disk adapters) keeps its own mapping, lookup and error messages.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any, Callable, Mapping, TypeVar

T = TypeVar("T")


def with_entry_points(builtin: Mapping[str, str], group: str) -> dict[str, str]:
    """``builtin`` plus the entry points of ``group`` (name -> target); a
    built-in name wins over an entry point of the same name."""
    known = dict(builtin)
    for ep in metadata.entry_points(group=group):
        known.setdefault(ep.name, ep.value)
    return known


def load_target(target: str) -> Any:
    """The object ``"module:attr"`` names; ``ImportError`` or
    ``AttributeError`` as importing it raises them."""
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def load_class(target: str, base: type[T], not_a_subclass: Callable[[], Exception]) -> type[T]:
    """The class ``target`` names (see ``load_target``); raises
    ``not_a_subclass()`` when that is not a subclass of ``base``."""
    cls = load_target(target)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise not_a_subclass()
    return cls
