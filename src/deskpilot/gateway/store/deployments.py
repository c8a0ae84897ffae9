"""Operator deployments stored in the database, next to the operator's deployments file.

The gateway runtime loads them with ``catalogue.load_catalogue_rows`` at start and again
whenever they change: every write marks the bus topic ``DEPLOYMENTS_CHANGED``, delivered
after commit, to every process through Redis (``store.watch`` covers the no-Redis case).
Validation is ``Deployment``'s own, plus a provider adapter that exists, an alias, and a name
no other deployment (stored or in the file) has. Keys and header values are stored as
``SecretBox`` ciphertexts bound to the deployment's name; the name therefore never changes.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pydantic import SecretStr, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import OperatorContext
from deskpilot.core.db import mark_changed
from deskpilot.core.errors import (
    Conflict,
    FieldError,
    NotFound,
    SecretUnreadable,
    ValidationFailed,
)
from deskpilot.core.models import utcnow
from deskpilot.core.resources import Resources
from deskpilot.core.secrets import RotationReport, SecretBox
from deskpilot.core.validation import field_errors
from deskpilot.gateway.providers import BUILTIN_PROVIDERS
from deskpilot.gateway.schemas import LITELLM_PROVIDER, Deployment
from deskpilot.gateway.store import repository as repo
from deskpilot.gateway.store.catalogue import (
    STORED_FIELDS,
    TABLE,
    CatalogueRow,
    file_view,
    headers_binding,
    key_binding,
    open_secrets,
    row_view,
    stored_fields,
)
from deskpilot.gateway.store.models import DeploymentRow
from deskpilot.gateway.store.schemas import (
    DeploymentCreate,
    DeploymentUpdate,
    DeploymentView,
    PriceIn,
)
from deskpilot.tenancy import record_platform_change

log = logging.getLogger(__name__)

# A bus topic, not a tenant: ':' never occurs in a tenant slug.
DEPLOYMENTS_CHANGED = "gateway:deployments"
# LiteLLM deployments need no api_base and the provider's own environment: the file's only.
PROVIDERS = frozenset(name for name, _ in BUILTIN_PROVIDERS) - {LITELLM_PROVIDER}
_NOT_NULL = ("alias", "provider", "model", "api_base", "read_timeout", "connect_timeout")
_AUDITED_OUT = {"created_at", "updated_at", "source", "secrets_readable"}


class DeploymentService:
    """Operator CRUD of stored deployments (operator session). ``file`` is what the
    deployments file declares: listed read-only, and its names cannot be taken."""

    def __init__(self, session: AsyncSession, box: SecretBox) -> None:
        self._session = session
        self._box = box

    async def list(self, *, file: Sequence[CatalogueRow]) -> list[DeploymentView]:
        stored = [row_view(r, self._box) for r in await repo.list_deployments(self._session)]
        return sorted([*map(file_view, file), *stored], key=lambda v: (v.alias, v.name))

    async def get(self, name: str, *, file: Sequence[CatalogueRow]) -> DeploymentView:
        for entry in file:
            if entry.deployment.name == name:
                return file_view(entry)
        return row_view(await self._row(name), self._box)

    async def create(
        self, body: DeploymentCreate, *, operator: OperatorContext, file: Sequence[CatalogueRow]
    ) -> DeploymentView:
        in_file = {e.deployment.name for e in file}
        taken = in_file | await repo.deployment_names(self._session)
        name = body.name or _next_name(body.alias, taken)
        if name in in_file:
            raise Conflict(f"a deployment named {name!r} is defined in the deployments file")
        if name in taken:
            raise Conflict(f"a deployment named {name!r} already exists")
        fields = body.model_dump(include=set(STORED_FIELDS), exclude_none=True)
        deployment = _validated(
            {
                **fields,
                "name": name,
                "api_key": body.api_key,
                "extra_headers": _plain_headers(body.extra_headers),
            }
        )
        now = utcnow()
        row = DeploymentRow(id=uuid.uuid4().hex, name=name, created_at=now, updated_at=now)
        self._apply(row, body.alias, deployment, body.price)
        self._session.add(row)
        await self._flush_unique(name)
        self._changed(operator, "deployment.create", name, None, row)
        return row_view(row, self._box)

    async def update(
        self,
        name: str,
        body: DeploymentUpdate,
        *,
        operator: OperatorContext,
        file: Sequence[CatalogueRow],
    ) -> DeploymentView:
        _refuse_file(name, file)
        row = await self._row(name, for_update=True)
        changes = body.model_fields_set
        nulls = [
            FieldError(f, "cannot be removed")
            for f in _NOT_NULL
            if f in changes and getattr(body, f) is None
        ]
        if nulls:
            raise ValidationFailed("deployment update refused", tuple(nulls))
        key, headers = self._kept_secrets(row, changes)
        fields = {**stored_fields(row), **body.model_dump(include=changes & set(STORED_FIELDS))}
        if "api_key" in changes:
            key = body.api_key
        if "extra_headers" in changes:
            headers = _plain_headers(body.extra_headers)
        deployment = _validated({**fields, "api_key": key, "extra_headers": headers})
        before = row_view(row, self._box)
        price = body.price if "price" in changes else _price_in(row)
        self._apply(row, body.alias or row.alias, deployment, price)
        row.updated_at = utcnow()
        await self._session.flush()
        self._changed(operator, "deployment.update", name, before, row)
        return row_view(row, self._box)

    async def delete(
        self, name: str, *, operator: OperatorContext, file: Sequence[CatalogueRow]
    ) -> None:
        _refuse_file(name, file)
        row = await self._row(name, for_update=True)
        before = row_view(row, self._box)
        await self._session.delete(row)
        self._changed(operator, "deployment.delete", name, before, None)

    async def _row(self, name: str, *, for_update: bool = False) -> DeploymentRow:
        row = await repo.get_deployment(self._session, name, for_update=for_update)
        if row is None:
            raise NotFound(f"no deployment named {name!r}")
        return row

    def _kept_secrets(
        self, row: DeploymentRow, changes: set[str]
    ) -> tuple[SecretStr | None, dict[str, str]]:
        """The stored key and headers an update keeps (those it does not replace)."""
        if {"api_key", "extra_headers"} <= changes:
            return None, {}
        try:
            return open_secrets(row, self._box)
        except SecretUnreadable:
            raise Conflict(
                f"the stored credentials of deployment {row.name!r} cannot be decrypted with the "
                "configured master keys: send api_key and extra_headers again (null for none)"
            ) from None

    def _apply(
        self, row: DeploymentRow, alias: str, deployment: Deployment, price: PriceIn | None
    ) -> None:
        row.alias = alias
        for field in STORED_FIELDS:
            setattr(row, field, getattr(deployment, field))
        secret = deployment.secret()
        row.api_key_ciphertext = (
            None if secret is None else self._box.encrypt(secret, bound_to=key_binding(row.name))
        )
        headers = dict(deployment.extra_headers)
        row.extra_headers_ciphertext = (
            None
            if not headers
            else self._box.encrypt(json.dumps(headers), bound_to=headers_binding(row.name))
        )
        row.input_price = None if price is None else price.input
        row.cached_input_price = None if price is None else _cached(price)
        row.output_price = None if price is None else price.output

    def _changed(
        self,
        operator: OperatorContext,
        action: str,
        name: str,
        before: DeploymentView | None,
        row: DeploymentRow | None,
    ) -> None:
        after = None if row is None else row_view(row, self._box)
        record_platform_change(
            self._session,
            operator=operator,
            action=action,
            target=name,
            old=None if before is None else before.model_dump(mode="json", exclude=_AUDITED_OUT),
            new=None if after is None else after.model_dump(mode="json", exclude=_AUDITED_OUT),
        )
        mark_changed(self._session, DEPLOYMENTS_CHANGED)

    async def _flush_unique(self, name: str) -> None:
        try:
            await self._session.flush()
        except IntegrityError:
            raise Conflict(f"a deployment named {name!r} already exists") from None


async def rotate_deployment_secrets(resources: Resources, box: SecretBox) -> RotationReport:
    """Re-encrypt every stored deployment's key and headers with the current master key."""
    rotated = unreadable = 0
    async with resources.db.dangerously_unscoped_session() as session:
        rows = await repo.deployments_for_update(session)
        for row in rows:
            changed = False
            try:
                for attribute, bound in (
                    ("api_key_ciphertext", key_binding(row.name)),
                    ("extra_headers_ciphertext", headers_binding(row.name)),
                ):
                    sealed = getattr(row, attribute)
                    fresh = None if sealed is None else box.reencrypt(sealed, bound_to=bound)
                    if fresh is not None:
                        setattr(row, attribute, fresh)
                        changed = True
            except SecretUnreadable:
                unreadable += 1
                log.error(
                    "deployment secret not rotated: cannot be decrypted",
                    extra={"deployment": row.name},
                )
            rotated += changed
    return RotationReport(TABLE, rotated, len(rows), unreadable)


def _validated(fields: Mapping[str, Any]) -> Deployment:
    errors: list[FieldError] = []
    provider = fields.get("provider")
    if isinstance(provider, str) and provider not in PROVIDERS:
        expected = ", ".join(sorted(PROVIDERS))
        errors.append(FieldError("provider", f"unknown provider: expected one of {expected}"))
    try:
        deployment = Deployment.model_validate(fields)
    except ValidationError as exc:
        # Only pydantic's message: the input of a refused field may be a key or a header value.
        errors.extend(field_errors(exc))
    if errors:
        raise ValidationFailed("deployment refused", tuple(errors))
    return deployment


def _plain_headers(headers: Mapping[str, SecretStr] | None) -> dict[str, str]:
    return {name: value.get_secret_value() for name, value in (headers or {}).items()}


def _next_name(alias: str, taken: set[str]) -> str:
    ordinal = 0
    while f"{alias}#{ordinal}" in taken:
        ordinal += 1
    return f"{alias}#{ordinal}"


def _refuse_file(name: str, file: Sequence[CatalogueRow]) -> None:
    if any(entry.deployment.name == name for entry in file):
        raise Conflict(
            f"deployment {name!r} is defined in the deployments file: change it there and "
            "restart (or reload) the gateway"
        )


def _cached(price: PriceIn) -> Decimal:
    return price.input if price.cached_input is None else price.cached_input


def _price_in(row: DeploymentRow) -> PriceIn | None:
    if row.input_price is None or row.output_price is None:
        return None
    return PriceIn(
        input=row.input_price, cached_input=row.cached_input_price, output=row.output_price
    )
