"""Tenants' own provider keys (bring-your-own keys): rules, storage and re-encryption.

A tenant admin stores one key per key family (``openai``, ``azure``, ``anthropic``, ... : the
families the deployments use) when the tenant's ``gateway.byo_keys`` is not ``off``. The key is
sealed by ``SecretBox`` bound to (tenant, family), so a ciphertext moved to another tenant's or
family's row does not open. Listing shows the family and a hint, never the key; the audit log
records the same. Every change marks the tenant changed, so every process's ``OwnKeysCache``
drops the tenant's keys after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from pydantic import SecretStr
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.db import mark_changed
from deskpilot.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    SecretUnreadable,
    ValidationFailed,
)
from deskpilot.core.models import utcnow
from deskpilot.core.resources import Resources
from deskpilot.core.secrets import RotationReport, SecretBox, binding
from deskpilot.gateway.routing import gateway_section
from deskpilot.gateway.store import repository as repo
from deskpilot.gateway.store.models import ProviderKeyRow
from deskpilot.gateway.store.schemas import FAMILY_RE, ProviderKeyView
from deskpilot.tenancy import record_tenant_change

log = logging.getLogger(__name__)

TABLE = "gateway_provider_keys"
MAX_KEY_CHARS = 4096
HINT_MIN_CHARS = 16  # a shorter key shows no characters at all
KEY_RULE = f"1-{MAX_KEY_CHARS} printable ASCII characters, no whitespace or control characters"


class ByoKeysDisabled(Forbidden):
    type, title = "byo_keys_disabled", "Own provider keys are not enabled for this tenant"


def key_binding(tenant_id: str, family: str) -> bytes:
    return binding(TABLE, tenant_id, family)


def check_api_key(value: str) -> None:
    """Refuse what cannot be a provider key, saying why but never echoing it."""
    if not value or len(value) > MAX_KEY_CHARS or any(not "!" <= c <= "~" for c in value):
        raise ValidationFailed("provider key refused", (FieldError("api_key", KEY_RULE),))


def hint(value: str) -> str:
    return "…" + value[-4:] if len(value) >= HINT_MIN_CHARS else "…"


def _view(row: ProviderKeyRow) -> ProviderKeyView:
    return ProviderKeyView(
        family=row.family,
        hint=row.hint,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
    )


class ProviderKeysService:
    """One tenant's own provider keys (``tenant:admin``); runs in a unit of work it is given."""

    def __init__(self, session: AsyncSession, box: SecretBox) -> None:
        self._session = session
        self._box = box
        self._keys = repo.ProviderKeyRepo(session)

    async def set(
        self,
        family: str,
        api_key: SecretStr,
        *,
        tenant: TenantContext,
        known_families: Collection[str],
    ) -> ProviderKeyView:
        """Store (or replace) the tenant's key for ``family``. Refused: 403 when the tenant's
        ``gateway.byo_keys`` is off, 422 for a family no deployment uses or a malformed key."""
        tenant.require(Scope.TENANT_ADMIN)
        if gateway_section(tenant).byo_keys == "off":
            raise ByoKeysDisabled(
                "this tenant cannot use its own provider keys (gateway.byo_keys is off for its "
                "plan); ask the operator"
            )
        if not FAMILY_RE.fullmatch(family) or family not in known_families:
            known = ", ".join(sorted(known_families)) or "none deployed"
            raise ValidationFailed(
                "unknown key family",
                (FieldError("family", f"{family!r} is not a key family in use ({known})"),),
            )
        secret = api_key.get_secret_value()
        check_api_key(secret)
        sealed = self._box.encrypt(secret, bound_to=key_binding(tenant.tenant_id, family))
        shown, now = hint(secret), utcnow()
        row = await self._keys.get_for_update(family, tenant=tenant)
        old = None if row is None else {"family": family, "hint": row.hint}
        if row is None:
            row = self._keys.add(
                ProviderKeyRow(
                    family=family,
                    ciphertext=sealed,
                    hint=shown,
                    created_at=now,
                    updated_at=now,
                    created_by=tenant.principal,
                ),
                tenant=tenant,
            )
        else:
            row.ciphertext, row.hint, row.updated_at = sealed, shown, now
            row.created_by = tenant.principal
        try:
            await self._session.flush()
        except IntegrityError:  # stored concurrently by another request
            raise Conflict(f"the key for {family!r} was changed concurrently; retry") from None
        record_tenant_change(
            self._session,
            tenant=tenant,
            action="provider_key.set" if old is None else "provider_key.replace",
            target=family,
            old=old,
            new={"family": family, "hint": shown},
        )
        mark_changed(self._session, tenant.tenant_id)
        return _view(row)

    async def list(self, *, tenant: TenantContext) -> list[ProviderKeyView]:
        tenant.require(Scope.TENANT_ADMIN)
        return [_view(r) for r in await self._keys.list_keys(tenant=tenant)]

    async def delete(self, family: str, *, tenant: TenantContext) -> None:
        tenant.require(Scope.TENANT_ADMIN)
        row = await self._keys.get_for_update(family, tenant=tenant)
        if row is None:
            raise NotFound(f"no provider key stored for {family!r}")
        await self._session.delete(row)
        record_tenant_change(
            self._session,
            tenant=tenant,
            action="provider_key.delete",
            target=family,
            old={"family": family, "hint": row.hint},
        )
        mark_changed(self._session, tenant.tenant_id)

    async def decrypted(self, *, tenant: TenantContext) -> dict[str, SecretStr]:
        """Every family's key in clear (for the gateway's cache, not for any response). A key
        no configured master key opens is left out, with an error log naming its family: the
        router then treats the family as having no own key."""
        keys: dict[str, SecretStr] = {}
        for row in await self._keys.list_keys(tenant=tenant):
            try:
                bound = key_binding(tenant.tenant_id, row.family)
                keys[row.family] = SecretStr(self._box.decrypt(row.ciphertext, bound_to=bound))
            except SecretUnreadable:
                log.error(
                    "own provider key skipped: it cannot be decrypted; the tenant must store "
                    "it again",
                    extra={"tenant_id": tenant.tenant_id, "family": row.family},
                )
        return keys


async def unscoped_rotate_provider_keys(resources: Resources, box: SecretBox) -> RotationReport:
    """Re-encrypt every tenant's provider keys with the current master key (operator role)."""
    rotated = unreadable = 0
    async with resources.db.dangerously_unscoped_session() as session:
        rows = await repo.unscoped_provider_keys_for_update(session)
        for row in rows:
            try:
                bound = key_binding(row.tenant_id, row.family)
                fresh = box.reencrypt(row.ciphertext, bound_to=bound)
            except SecretUnreadable:
                unreadable += 1
                log.error(
                    "own provider key not rotated: it cannot be decrypted",
                    extra={"tenant_id": row.tenant_id, "family": row.family},
                )
                continue
            if fresh is not None:
                row.ciphertext = fresh
                rotated += 1
    return RotationReport(TABLE, rotated, len(rows), unreadable)
