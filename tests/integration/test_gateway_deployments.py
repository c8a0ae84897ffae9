"""Operator deployments stored in the database: CRUD through the Python API, validation by
``Deployment``'s own rules, file names reserved, secrets encrypted and never shown, every change
audited and announced to every process."""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal
from types import MappingProxyType

import pytest
from sqlalchemy import text

from deskpilot.core.errors import Conflict, NotFound, ValidationFailed
from deskpilot.core.invalidation import InvalidationBus
from deskpilot.core.secrets import SecretBox, new_master_key, parse_master_key
from deskpilot.gateway import (
    Deployment,
    DeploymentPrice,
    DeploymentUpdate,
    GatewayConfig,
    load_catalogue_rows,
)
from deskpilot.gateway.store.catalogue import key_binding
from deskpilot.gateway.store.watch import DeploymentWatch
from deskpilot.platform import Platform
from tests.gateway_store_support import OPERATOR, OPERATOR_KEY, Deployments, unique

HEADER_VALUE = "org-header-value-" + "H" * 20


def fields_of(failure: ValidationFailed) -> dict[str, str]:
    return {error.path: error.message for error in failure.errors}


async def rows_named(platform: Platform, name: str) -> list[tuple[str, Deployment]]:
    rows = await load_catalogue_rows(platform.resources.db, secrets=platform.secrets)
    return [(row.alias, row.deployment) for row in rows if row.deployment.name == name]


async def test_create_stores_encrypted_and_shows_no_secret(
    platform: Platform, deployments: Deployments, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        view = await deployments.create(
            api_key=OPERATOR_KEY,
            extra_headers={"OpenAI-Organization": HEADER_VALUE},
            rpm=500,
            tpm=90_000,
            price={"input": "2.50", "output": 10},
        )
        await load_catalogue_rows(platform.resources.db, secrets=platform.secrets)
        await platform.admin(OPERATOR).deployments.list()
    assert OPERATOR_KEY not in caplog.text
    assert HEADER_VALUE not in caplog.text
    assert view.source == "api"
    assert view.has_api_key
    assert view.extra_header_names == ("OpenAI-Organization",)
    assert view.family == "openai"
    assert view.secrets_readable
    assert view.price is not None
    assert (view.price.input, view.price.cached_input, view.price.output) == (
        Decimal("2.50"),
        Decimal("2.50"),
        Decimal(10),
    )
    for shown in (view.model_dump_json(), repr(view), str(view)):
        assert OPERATOR_KEY not in shown
        assert HEADER_VALUE not in shown
    async with platform.resources.db.dangerously_unscoped_session() as session:
        stored = (
            await session.execute(
                text(
                    "SELECT api_key_ciphertext, extra_headers_ciphertext FROM gateway_deployments "
                    "WHERE name = :name"
                ),
                {"name": view.name},
            )
        ).one()
    assert OPERATOR_KEY.encode() not in stored[0]
    assert HEADER_VALUE.encode() not in stored[1]
    assert await platform.admin(OPERATOR).deployments.get(view.name) == view


async def test_catalogue_rows_hold_the_decrypted_deployment_and_price(
    platform: Platform, deployments: Deployments
) -> None:
    view = await deployments.create(
        api_key=OPERATOR_KEY,
        extra_headers={"X-Org": HEADER_VALUE},
        key_family="azure",
        read_timeout=12.5,
        max_retries=1,
        price={"input": "0.15", "cached_input": "0.075", "output": "0.6"},
    )
    rows = await load_catalogue_rows(platform.resources.db, secrets=platform.secrets)
    [row] = [r for r in rows if r.deployment.name == view.name]
    assert row.alias == view.alias
    deployment = row.deployment
    assert deployment.secret() == OPERATOR_KEY
    assert dict(deployment.extra_headers) == {"X-Org": HEADER_VALUE}
    assert (deployment.family, deployment.read_timeout, deployment.max_retries) == (
        "azure",
        12.5,
        1,
    )
    assert deployment.connect_timeout == Deployment.model_fields["connect_timeout"].default
    assert row.price == DeploymentPrice(
        deployment=view.name,
        provider="openai",
        model="gpt-4o-mini",
        input=Decimal("0.15"),
        cached_input=Decimal("0.075"),
        output=Decimal("0.6"),
    )
    assert OPERATOR_KEY not in repr(row)
    assert HEADER_VALUE not in repr(row)
    assert rows == await platform.gateway_store.load_catalogue_rows()


async def test_generated_names_take_the_first_free_ordinal(deployments: Deployments) -> None:
    alias = unique("gpt")
    first = await deployments.create(alias=alias, name=None)
    second = await deployments.create(alias=alias, name=None)
    assert (first.name, second.name) == (f"{alias}#0", f"{alias}#1")


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"api_base": "ftp://example.com"}, "api_base"),
        ({"api_base": f"https://user:{OPERATOR_KEY}@example.com/v1"}, "api_base"),
        ({"api_base": f"https://{OPERATOR_KEY}@example.com/v1"}, "api_base"),
        ({"api_base": f"https://example.com/v1?key={OPERATOR_KEY}"}, "api_base"),
        ({"provider": "cohere"}, "provider"),
        ({"rpm": 0}, "rpm"),
        ({"read_timeout": -1}, "read_timeout"),
        ({"extra_headers": {"Authorization": HEADER_VALUE}}, "extra_headers"),
        ({"alias": "has space"}, "alias"),
        ({"name": "a/b"}, "name"),
        ({"key_family": "no spaces"}, "key_family"),
        ({"price": {"input": "-1", "output": "1"}}, "price.input"),
        ({"price": {"input": "1"}}, "price.output"),
        ({"model": ""}, "model"),
        ({"unknown": 1}, "unknown"),
    ],
)
async def test_invalid_deployments_are_refused_by_path_and_not_stored(
    platform: Platform, deployments: Deployments, overrides: dict[str, object], path: str
) -> None:
    before = await platform.admin(OPERATOR).deployments.list()
    with pytest.raises(ValidationFailed) as raised:
        await deployments.create(api_key=OPERATOR_KEY, **overrides)
    assert path in fields_of(raised.value), raised.value.errors
    for text_ in (str(raised.value), repr(raised.value), json.dumps(fields_of(raised.value))):
        assert OPERATOR_KEY not in text_
        assert HEADER_VALUE not in text_
    assert raised.value.__cause__ is None  # pydantic's own text quotes the refused input
    assert await platform.admin(OPERATOR).deployments.list() == before


async def test_names_are_unique_across_the_store_and_the_file(
    platform: Platform, deployments: Deployments
) -> None:
    taken = await deployments.create()
    with pytest.raises(Conflict, match="already exists"):
        await deployments.create(name=taken.name)

    in_file = Deployment(
        name=unique("filed"),
        model="gpt-4o",
        api_base=f"https://svc:{OPERATOR_KEY}@x.example/v1?api-key={OPERATOR_KEY}&region=eu",
    )
    config = GatewayConfig(deployments=MappingProxyType({"file-alias": (in_file,)}))
    store = platform.gateway_store
    store.use_file_deployments(lambda: config)
    try:
        admin = platform.admin(OPERATOR).deployments
        with pytest.raises(Conflict, match="deployments file"):
            await deployments.create(name=in_file.name)
        listed = {v.name: v for v in await admin.list()}
        assert listed[in_file.name].source == "file"
        # the file may hold a credential in a base; it is never shown
        assert listed[in_file.name].api_base == "https://***@x.example/v1?api-key=***&region=***"
        assert OPERATOR_KEY not in json.dumps([v.model_dump(mode="json") for v in listed.values()])
        assert listed[in_file.name].alias == "file-alias"
        assert listed[taken.name].source == "api"
        assert (await admin.get(in_file.name)).source == "file"
        with pytest.raises(Conflict, match="deployments file"):
            await admin.update(in_file.name, DeploymentUpdate(rpm=5))
        with pytest.raises(Conflict, match="deployments file"):
            await admin.delete(in_file.name)
    finally:
        store.use_file_deployments(lambda: None)


async def test_update_changes_what_it_names_and_keeps_the_rest(
    platform: Platform, deployments: Deployments
) -> None:
    view = await deployments.create(
        api_key=OPERATOR_KEY, extra_headers={"X-Org": HEADER_VALUE}, price={"input": 1, "output": 2}
    )
    admin = platform.admin(OPERATOR).deployments
    new_alias = unique("moved")
    changed = await admin.update(view.name, {"alias": new_alias, "rpm": 60, "model": "gpt-4o"})
    assert (changed.alias, changed.rpm, changed.model) == (new_alias, 60, "gpt-4o")
    assert changed.has_api_key
    assert changed.extra_header_names == ("X-Org",)
    assert changed.price == view.price
    [(alias, deployment)] = await rows_named(platform, view.name)
    assert alias == new_alias
    assert deployment.secret() == OPERATOR_KEY
    assert dict(deployment.extra_headers) == {"X-Org": HEADER_VALUE}

    cleared = await admin.update(
        view.name, {"api_key": None, "price": None, "extra_headers": None, "rpm": None}
    )
    assert not cleared.has_api_key
    assert (cleared.price, cleared.rpm, cleared.extra_header_names) == (None, None, ())
    [(_, deployment)] = await rows_named(platform, view.name)
    assert deployment.api_key is None

    with pytest.raises(ValidationFailed) as raised:
        await admin.update(view.name, {"model": None, "api_base": "nope"})
    assert "model" in fields_of(raised.value)
    with pytest.raises(ValidationFailed):
        await admin.update(view.name, {"name": "renamed"})  # names never change
    with pytest.raises(NotFound):
        await admin.update(unique("missing"), {"rpm": 1})


async def test_delete_removes_it_from_the_catalogue(
    platform: Platform, deployments: Deployments
) -> None:
    view = await deployments.create()
    admin = platform.admin(OPERATOR).deployments
    await admin.delete(view.name)
    assert await rows_named(platform, view.name) == []
    with pytest.raises(NotFound):
        await admin.get(view.name)
    with pytest.raises(NotFound):
        await admin.delete(view.name)


async def test_changes_are_audited_without_secrets(
    platform: Platform, deployments: Deployments
) -> None:
    view = await deployments.create(api_key=OPERATOR_KEY, extra_headers={"X-Org": HEADER_VALUE})
    admin = platform.admin(OPERATOR)
    await admin.deployments.update(view.name, {"api_key": OPERATOR_KEY + "-rotated"})
    await admin.deployments.delete(view.name)
    entries = [e for e in await admin.platform_audit(limit=50) if e.target == view.name]
    assert [e.action for e in entries] == [
        "deployment.delete",
        "deployment.update",
        "deployment.create",
    ]
    assert all(e.actor == f"operator:{OPERATOR.principal}" for e in entries)
    created = entries[-1].new_value
    assert created is not None
    assert created["has_api_key"] is True
    assert created["extra_header_names"] == ["X-Org"]
    dumped = json.dumps([e.model_dump(mode="json") for e in entries])
    assert OPERATOR_KEY not in dumped
    assert HEADER_VALUE not in dumped


async def test_litellm_entries_are_accepted_without_environment_references(
    platform: Platform, deployments: Deployments
) -> None:
    alias = unique("lite")
    entry = {
        "model_name": alias,
        "litellm_params": {
            "model": "anthropic/claude-sonnet-4",
            "api_key": OPERATOR_KEY,
            "rpm": 40,
        },
        "model_info": {"input_cost_per_token": 0.000003, "output_cost_per_token": 0.000015},
    }
    view = await platform.admin(OPERATOR).deployments.create(entry)
    deployments.track(view.name)
    assert (view.alias, view.name, view.provider, view.model) == (
        alias,
        f"{alias}#0",
        "anthropic",
        "claude-sonnet-4",
    )
    assert (view.family, view.rpm, view.has_api_key) == ("anthropic", 40, True)
    assert view.price is not None
    assert (view.price.input, view.price.output) == (Decimal(3), Decimal(15))

    referenced = {
        "model_name": alias,
        "litellm_params": {"model": "openai/gpt-4o", "api_key": "os.environ/HOME"},
    }
    with pytest.raises(ValidationFailed) as raised:
        await platform.admin(OPERATOR).deployments.create(referenced)
    assert "os.environ" in fields_of(raised.value)["litellm_params"]
    broken = {"model_name": alias, "litellm_params": {"model": "unknownprefix/x"}}
    with pytest.raises(ValidationFailed) as raised:
        await platform.admin(OPERATOR).deployments.create(broken)
    assert "litellm_params.model" in fields_of(raised.value)


async def test_every_change_is_announced_after_commit(
    platform: Platform, deployments: Deployments
) -> None:
    heard: list[int] = []
    platform.gateway_store.on_deployments_change(lambda: heard.append(1))
    view = await deployments.create()
    assert len(heard) == 1
    await platform.admin(OPERATOR).deployments.update(view.name, {"rpm": 7})
    assert len(heard) == 2
    with pytest.raises(ValidationFailed):
        await platform.admin(OPERATOR).deployments.update(view.name, {"rpm": 0})
    assert len(heard) == 2  # nothing committed, nothing announced
    await platform.admin(OPERATOR).deployments.delete(view.name)
    assert len(heard) == 3


async def test_without_a_live_bus_other_processes_notice_by_polling(
    platform: Platform, deployments: Deployments
) -> None:
    """Another process (its own in-process bus, never live) hears of a change within a poll."""
    watch = DeploymentWatch(platform.resources.db, InvalidationBus(), poll_seconds=0.05)
    heard = asyncio.Event()
    watch.on_change(heard.set)
    await watch.start()
    try:
        await asyncio.sleep(0.15)
        assert not heard.is_set()
        await deployments.create()
        await asyncio.wait_for(heard.wait(), timeout=5)
    finally:
        await watch.stop()


async def test_unreadable_secrets_are_flagged_and_skipped(
    platform: Platform, deployments: Deployments, caplog: pytest.LogCaptureFixture
) -> None:
    view = await deployments.create(api_key=OPERATOR_KEY)
    stranger = SecretBox(parse_master_key(new_master_key()))
    foreign = stranger.encrypt(OPERATOR_KEY, bound_to=key_binding(view.name))
    async with platform.resources.db.dangerously_unscoped_session() as session:
        await session.execute(
            text("UPDATE gateway_deployments SET api_key_ciphertext = :c WHERE name = :n"),
            {"c": foreign, "n": view.name},
        )
    admin = platform.admin(OPERATOR).deployments
    assert not (await admin.get(view.name)).secrets_readable
    with caplog.at_level(logging.ERROR):
        assert await rows_named(platform, view.name) == []
    assert any(getattr(r, "deployment", None) == view.name for r in caplog.records)
    assert OPERATOR_KEY not in caplog.text
    with pytest.raises(Conflict, match="cannot be decrypted"):
        await admin.update(view.name, {"rpm": 3})
    fixed = await admin.update(view.name, {"api_key": OPERATOR_KEY, "extra_headers": None})
    assert fixed.secrets_readable
    assert [d.secret() for _, d in await rows_named(platform, view.name)] == [OPERATOR_KEY]
