"""Secrets at rest: AES-256-GCM under one master key, with the old keys kept for reading.

Every stored credential (an operator's provider key, a tenant's own provider key, later an
agent tool's secret) is sealed by ``SecretBox.encrypt`` and opened by ``SecretBox.decrypt``.
A ciphertext is::

    version (1 byte, 0x01) | key id (4 bytes) | nonce (12 bytes) | AES-GCM ciphertext and tag

The key id is the first 4 bytes of SHA-256 of the master key (shown as 8 hex characters), so a
process knows which key sealed a value and can still open values sealed by a key listed in
``DESKPILOT_SECRET_KEYS_OLD`` after a rotation. The associated data binds a ciphertext to the
row it belongs to (``binding("gateway_provider_keys", tenant_id, family)``): a ciphertext copied
into another tenant's row, or another family's, does not decrypt.

The master key is ``DESKPILOT_SECRET_KEY`` (base64 of 32 bytes) or, when unset, a key generated
once into ``DESKPILOT_HOME/secret-key`` (mode 0600). Losing it loses every stored secret.

No message raised here ever contains a plaintext: only key ids and what kind of value it was.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from deskpilot.core.errors import SecretUnreadable, SetupError

if TYPE_CHECKING:
    from deskpilot.core.resources import Resources
    from deskpilot.core.settings import Settings

VERSION = 0x01
KEY_BYTES = 32
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12
_HEADER_BYTES = 1 + _KEY_ID_BYTES + _NONCE_BYTES
KEY_RULE = "base64 of exactly 32 random bytes (generate one with: deskpilot secrets new-key)"


def parse_master_key(text: str) -> bytes:
    """The 32 key bytes of a base64 master key; ``ValueError`` (without the value) otherwise."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"not valid base64: must be {KEY_RULE}") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"decodes to {len(raw)} bytes: must be {KEY_RULE}")
    return raw


def new_master_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def key_id(key: bytes) -> str:
    """8 hex characters naming a master key (safe to show: a digest of 256 random bits)."""
    return hashlib.sha256(key).hexdigest()[: 2 * _KEY_ID_BYTES]


def binding(table: str, *parts: str) -> bytes:
    """Associated data tying a ciphertext to its row: unambiguous for any parts."""
    return json.dumps([table, *parts], separators=(",", ":")).encode()


class SecretBox:
    """Seals with the current master key; opens with it or any old one."""

    __slots__ = ("_ciphers", "_current", "key_id")

    def __init__(self, current: bytes, old: Sequence[bytes] = ()) -> None:
        for key in (current, *old):
            if len(key) != KEY_BYTES:
                raise ValueError(f"master keys are {KEY_BYTES} bytes")
        self.key_id = key_id(current)
        self._current = AESGCM(current)
        self._ciphers = {bytes.fromhex(key_id(k)): AESGCM(k) for k in (*old, current)}

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r}, old_keys={len(self._ciphers) - 1})"

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secret_key is not None:
            current = parse_master_key(settings.secret_key.get_secret_value())
        else:
            current = key_file(settings.secret_key_file)
        old: list[bytes] = []
        if settings.secret_keys_old is not None:
            for part in settings.secret_keys_old.get_secret_value().split(","):
                if part.strip():
                    old.append(parse_master_key(part))
        return cls(current, [k for k in old if k != current])

    def encrypt(self, plaintext: str, *, bound_to: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        header = bytes([VERSION]) + bytes.fromhex(self.key_id) + nonce
        return header + self._current.encrypt(nonce, plaintext.encode(), header + bound_to)

    def decrypt(self, ciphertext: bytes, *, bound_to: bytes) -> str:
        """The plaintext, or ``SecretUnreadable`` saying why (never what)."""
        if len(ciphertext) <= _HEADER_BYTES or ciphertext[0] != VERSION:
            raise SecretUnreadable("a stored secret is not in a format this version can read")
        sealed_by = ciphertext[1 : 1 + _KEY_ID_BYTES]
        cipher = self._ciphers.get(sealed_by)
        if cipher is None:
            raise SecretUnreadable(
                f"a stored secret was encrypted with master key {sealed_by.hex()}, which is "
                f"neither DESKPILOT_SECRET_KEY (key {self.key_id}) nor listed in "
                "DESKPILOT_SECRET_KEYS_OLD"
            )
        header, nonce = ciphertext[:_HEADER_BYTES], ciphertext[1 + _KEY_ID_BYTES : _HEADER_BYTES]
        try:
            plain = cipher.decrypt(nonce, ciphertext[_HEADER_BYTES:], header + bound_to)
        except InvalidTag:
            raise SecretUnreadable(
                "a stored secret does not belong to the record it was found in, or was altered"
            ) from None
        return plain.decode()

    def sealed_by_current(self, ciphertext: bytes) -> bool:
        return ciphertext[1 : 1 + _KEY_ID_BYTES] == bytes.fromhex(self.key_id)

    def reencrypt(self, ciphertext: bytes, *, bound_to: bytes) -> bytes | None:
        """The value sealed with the current key, or None if it already is."""
        if self.sealed_by_current(ciphertext):
            return None
        return self.encrypt(self.decrypt(ciphertext, bound_to=bound_to), bound_to=bound_to)


def private_file_once(path: Path, make: Callable[[], str]) -> str:
    """The text of ``path``, written first from ``make()`` if the file is missing.

    The text is written completely to a private temporary file (O_EXCL, mode 0600) and then
    hard-linked into place, which fails if the file exists: processes starting together all end
    up with the one file that was linked first, and none ever reads a half-written file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(make() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process linked its file first: that one is the file
        finally:
            temporary.unlink(missing_ok=True)
    return path.read_text()


def key_file(path: Path) -> bytes:
    """The master key in ``path``, generated there first if missing (``private_file_once``)."""
    text = private_file_once(path, new_master_key)
    try:
        return parse_master_key(text)
    except ValueError as exc:
        raise SetupError(
            f"{path} does not hold a usable secret key ({exc}). Restore it from your backup, or "
            "set DESKPILOT_SECRET_KEY to the key the stored secrets were encrypted with."
        ) from None


@dataclass(frozen=True, slots=True)
class RotationReport:
    """One store's re-encryption: rows now under the current key (``rotated``), rows seen, and
    rows no configured key can open (left as they were)."""

    store: str
    rotated: int
    total: int
    unreadable: int = 0


class SecretRotation(Protocol):
    """Re-encrypts every secret of one store with the current master key (operator session).
    Components declare theirs in ``Component.secret_rotations``; ``deskpilot secrets rotate``
    runs them all."""

    async def __call__(self, resources: Resources, box: SecretBox) -> RotationReport: ...
