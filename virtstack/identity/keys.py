"""The Fernet key repository that signs and encrypts tokens.

One directory (mode 0700) of key files (mode 0600) named by integers, as
Keystone lays them out: ``0`` is the *staged* key (the next primary), the
highest number is the *primary* (it signs new tokens), the others are older
keys kept so tokens they signed still validate. Rotation promotes the staged
key, stages a new one and drops the oldest beyond ``max_active_keys``; a
staged key exists so that every host of a cloud can receive the next primary
before any host signs with it.

Key material is never logged.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from typing import Iterator

from cryptography import fernet

from virtstack import exception

LOG = logging.getLogger(__name__)

_LOCK_FILE = ".lock"


class KeyRepository:
    """The keys under ``path``; created on first use."""

    def __init__(self, path: str, max_active_keys: int = 3):
        if max_active_keys < 2:
            raise ValueError("max_active_keys must be at least 2 (primary and staged)")
        self.path = path
        self.max_active_keys = max_active_keys
        self._lock = threading.Lock()
        self._cache: tuple[tuple[int, int], fernet.MultiFernet] | None = None

    # -- reading -------------------------------------------------------------

    def fernet(self) -> fernet.MultiFernet:
        """A MultiFernet that encrypts with the primary key and decrypts with
        any key in the repository. Reloaded when the directory changes (a
        rotation by another process)."""
        self.ensure()
        stamp = self._stamp()
        cached = self._cache
        if cached is not None and cached[0] == stamp:
            return cached[1]
        keys = self.load()
        multi = fernet.MultiFernet([fernet.Fernet(key) for _, key in keys])
        self._cache = (stamp, multi)
        return multi

    def load(self) -> list[tuple[int, bytes]]:
        """(index, key) pairs, primary first, then older keys newest first,
        the staged key last."""
        self.ensure()
        found = []
        for name in os.listdir(self.path):
            if not name.isdigit():
                continue
            with open(os.path.join(self.path, name), "rb") as f:
                found.append((int(name), f.read().strip()))
        if len(found) < 2:
            raise exception.ConfigError(
                reason=f"the Fernet key repository {self.path} holds {len(found)} key(s); "
                       "it needs a staged and a primary key")
        found.sort(key=lambda item: (item[0] == 0, -item[0]))
        return found

    def _stamp(self) -> tuple[int, int]:
        info = os.stat(self.path)
        return info.st_mtime_ns, info.st_ino

    # -- writing -------------------------------------------------------------

    def ensure(self) -> None:
        """Create the directory and its first two keys unless present."""
        if self._cache is not None and os.path.isdir(self.path):
            return
        with self._locked():
            names = [n for n in os.listdir(self.path) if n.isdigit()]
            if not names:
                self._write_key(0)
                self._write_key(1)
                LOG.info("Created the Fernet key repository %s", self.path)

    def rotate(self) -> int:
        """Promote the staged key to primary, stage a new key, and drop the
        oldest keys beyond ``max_active_keys``. Returns the new primary's
        index."""
        self.ensure()
        with self._locked():
            indexes = sorted(int(n) for n in os.listdir(self.path) if n.isdigit())
            new_primary = max(indexes) + 1
            os.replace(os.path.join(self.path, "0"), os.path.join(self.path, str(new_primary)))
            self._write_key(0)
            older = [i for i in indexes if i != 0]
            # Active keys: staged + new primary + the newest older ones.
            keep_older = self.max_active_keys - 2
            for index in older[:max(0, len(older) - keep_older)]:
                os.unlink(os.path.join(self.path, str(index)))
        self._cache = None
        LOG.info("Rotated the Fernet keys in %s: primary is now key %d", self.path, new_primary)
        return new_primary

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Held while writing: a thread lock, and a file lock for the other
        processes sharing the directory (an API server and a bootstrap)."""
        with self._lock:
            os.makedirs(self.path, mode=0o700, exist_ok=True)
            os.chmod(self.path, 0o700)
            fd = os.open(os.path.join(self.path, _LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the file lock

    def _write_key(self, index: int) -> None:
        """Write a new key atomically, readable by its owner only."""
        final = os.path.join(self.path, str(index))
        temp = os.path.join(self.path, f".{index}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, fernet.Fernet.generate_key())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
