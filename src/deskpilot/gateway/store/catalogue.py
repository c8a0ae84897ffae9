"""What the gateway's catalogue reads from the stored deployments, and how one is shown.

``load_catalogue_rows`` is the runtime's loader: every stored deployment with its key and
headers decrypted (a ``Deployment``), its alias and its price. Keys and header values are
``SecretBox`` ciphertexts bound to the deployment's name (``key_binding``, ``headers_binding``).
Views (``DeploymentView``) never carry them: only ``has_api_key`` and the headers' names.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any, NamedTuple

from pydantic import SecretStr, ValidationError

from deskpilot.core.db import Database
from deskpilot.core.errors import SecretUnreadable
from deskpilot.core.secrets import SecretBox, binding
from deskpilot.gateway.config_litellm import DeploymentPrice
from deskpilot.gateway.schemas import Deployment, redacted_url
from deskpilot.gateway.store import repository as repo
from deskpilot.gateway.store.models import DeploymentRow
from deskpilot.gateway.store.schemas import DeploymentView, PriceView

log = logging.getLogger(__name__)

TABLE = "gateway_deployments"
# ``Deployment`` fields stored in their own columns, as they are.
STORED_FIELDS = (
    "provider",
    "model",
    "api_base",
    "key_family",
    "read_timeout",
    "connect_timeout",
    "max_retries",
    "rpm",
    "tpm",
)
_STORED_SCALE = Decimal("1e-12")


class CatalogueRow(NamedTuple):
    """One deployment for the gateway's catalogue: the alias it serves, the deployment (with
    its key), and its price when the operator gave one."""

    alias: str
    deployment: Deployment
    price: DeploymentPrice | None


def key_binding(name: str) -> bytes:
    return binding(TABLE, name, "api_key")


def headers_binding(name: str) -> bytes:
    return binding(TABLE, name, "extra_headers")


async def load_catalogue_rows(db: Database, *, secrets: SecretBox) -> list[CatalogueRow]:
    """Every stored deployment, decrypted, ordered by alias then age. A row whose credentials
    no configured master key opens, or that no longer validates, is skipped with an error log
    (by name only), so one bad row never takes the others down."""
    async with db.unbound_session() as session:
        rows = await repo.list_deployments(session)
    loaded: list[CatalogueRow] = []
    for row in rows:
        try:
            key, headers = open_secrets(row, secrets)
            deployment = Deployment.model_validate(
                {**stored_fields(row), "api_key": key, "extra_headers": headers}
            )
        except SecretUnreadable:
            log.error(
                "stored deployment skipped: its credentials cannot be decrypted",
                extra={"deployment": row.name},
            )
            continue
        except ValidationError as exc:
            paths = [".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False)]
            log.error(
                "stored deployment skipped: no longer valid",
                extra={"deployment": row.name, "fields": paths},
            )
            continue
        loaded.append(CatalogueRow(row.alias, deployment, row_price(row)))
    return loaded


def file_view(entry: CatalogueRow) -> DeploymentView:
    deployment, price = entry.deployment, entry.price
    return DeploymentView(
        name=deployment.name,
        alias=entry.alias,
        source="file",
        provider=deployment.provider,
        model=deployment.model,
        api_base=deployment.api_base and redacted_url(deployment.api_base),
        key_family=deployment.key_family,
        family=deployment.family,
        has_api_key=deployment.api_key is not None,
        extra_header_names=tuple(sorted(deployment.extra_headers)),
        read_timeout=deployment.read_timeout,
        connect_timeout=deployment.connect_timeout,
        max_retries=deployment.max_retries,
        rpm=deployment.rpm,
        tpm=deployment.tpm,
        price=None if price is None else price_view(price.input, price.cached_input, price.output),
        secrets_readable=True,
        created_at=None,
        updated_at=None,
    )


def row_view(row: DeploymentRow, box: SecretBox) -> DeploymentView:
    try:
        _, headers = open_secrets(row, box)
        names, readable = tuple(sorted(headers)), True
    except SecretUnreadable:
        names, readable = (), False
    price = None
    if row.input_price is not None and row.output_price is not None:
        price = price_view(row.input_price, row.cached_input_price, row.output_price)
    return DeploymentView(
        name=row.name,
        alias=row.alias,
        source="api",
        provider=row.provider,
        model=row.model,
        api_base=redacted_url(row.api_base),
        key_family=row.key_family,
        family=row.key_family or row.provider,
        has_api_key=row.api_key_ciphertext is not None,
        extra_header_names=names,
        read_timeout=row.read_timeout,
        connect_timeout=row.connect_timeout,
        max_retries=row.max_retries,
        rpm=row.rpm,
        tpm=row.tpm,
        price=price,
        secrets_readable=readable,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def open_secrets(row: DeploymentRow, box: SecretBox) -> tuple[SecretStr | None, dict[str, str]]:
    key = None
    if row.api_key_ciphertext is not None:
        key = SecretStr(box.decrypt(row.api_key_ciphertext, bound_to=key_binding(row.name)))
    headers: dict[str, str] = {}
    if row.extra_headers_ciphertext is not None:
        headers = json.loads(
            box.decrypt(row.extra_headers_ciphertext, bound_to=headers_binding(row.name))
        )
    return key, headers


def stored_fields(row: DeploymentRow) -> dict[str, Any]:
    return {"name": row.name, **{f: getattr(row, f) for f in STORED_FIELDS}}


def row_price(row: DeploymentRow) -> DeploymentPrice | None:
    if row.input_price is None or row.output_price is None:
        return None
    return DeploymentPrice(
        deployment=row.name,
        provider=row.provider,
        model=row.model,
        input=row.input_price,
        cached_input=(
            row.input_price if row.cached_input_price is None else row.cached_input_price
        ),
        output=row.output_price,
    )


def price_view(input_: Decimal, cached: Decimal | None, output: Decimal) -> PriceView:
    """Shown as stored (``numeric(24, 12)``) whatever the source: file, request or row."""
    return PriceView(
        input=input_.quantize(_STORED_SCALE),
        cached_input=(input_ if cached is None else cached).quantize(_STORED_SCALE),
        output=output.quantize(_STORED_SCALE),
    )
