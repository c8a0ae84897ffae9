"""API key format, generation and verification.

A key reads ``dp_<tenant>_<key id>_<secret>``: ``dp_acme_k3v9q2m4xa_<40 chars>``. The tenant
slug in the key (as in Slack's team-scoped tokens) lets the lookup run under row-level security
for that tenant: resolving a credential never needs a cross-tenant query. The tenant part is a
claim, not a proof; the secret is the proof. The key id is the short lookup prefix shown in
listings.

Only SHA-256 of the whole key is stored. The secret carries 238 bits from ``secrets``, so a
slow password hash would add per-request latency without adding safety; comparison is constant
time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

from deskpilot.tenancy.schemas import SLUG_RE

KEY_PREFIX = "dp"
OPERATOR_PREFIX = "dpo"
_ALPHABET = string.ascii_letters + string.digits
_KEY_ID_ALPHABET = string.ascii_lowercase + string.digits
KEY_ID_LENGTH = 10
SECRET_LENGTH = 40


@dataclass(frozen=True, slots=True)
class ParsedKey:
    tenant_id: str
    key_id: str
    token: str

    @property
    def prefix(self) -> str:
        return display_prefix(self.tenant_id, self.key_id)


def display_prefix(tenant_id: str, key_id: str) -> str:
    return f"{KEY_PREFIX}_{tenant_id}_{key_id}"


def new_key_id() -> str:
    return "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))


def new_key(tenant_id: str) -> tuple[ParsedKey, bytes]:
    """A fresh key for the tenant and the hash to store."""
    key_id = new_key_id()
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
    token = f"{display_prefix(tenant_id, key_id)}_{secret}"
    return ParsedKey(tenant_id, key_id, token), hash_key(token)


def new_operator_token() -> str:
    return f"{OPERATOR_PREFIX}_" + "".join(secrets.choice(_ALPHABET) for _ in range(48))


def hash_key(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def verify(token: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_key(token), stored_hash)


def parse_key(token: str) -> ParsedKey | None:
    """The parts of a well-formed tenant key, or None (operator tokens are never tenant keys)."""
    parts = token.split("_")
    if len(parts) != 4 or parts[0] != KEY_PREFIX:
        return None
    _, tenant_id, key_id, secret = parts
    if (
        not SLUG_RE.fullmatch(tenant_id)
        or len(key_id) != KEY_ID_LENGTH
        or not all(c in _KEY_ID_ALPHABET for c in key_id)
        or len(secret) != SECRET_LENGTH
        or not secret.isalnum()
        or not secret.isascii()
    ):
        return None
    return ParsedKey(tenant_id, key_id, token)
