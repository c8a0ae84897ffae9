"""The Python API: one ``Platform`` per process, scoped handles per tenant.

    async with await Platform.open() as platform:
        ctx = await platform.authenticate("dp_acme_...")
        keys = await platform.tenant(ctx).keys.list()

Each handle method is one unit of work: it opens the transaction, calls the services (which
never commit) and commits. HTTP routes call the same handles. This module composes the
components through their public surfaces only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType

from deskpilot.components import BUILTIN
from deskpilot.core.component import Component
from deskpilot.core.config import ConfigSchema
from deskpilot.core.context import OperatorContext, Scope, TenantContext
from deskpilot.core.db import Database
from deskpilot.core.invalidation import InvalidationBus, RedisInvalidationBus
from deskpilot.core.migrate import current_revision, head_revision, migrate
from deskpilot.core.redis import open_redis
from deskpilot.core.resources import PurgeStep, Resources
from deskpilot.core.secrets import RotationReport, SecretBox, private_file_once
from deskpilot.core.settings import Settings
from deskpilot.gateway import (
    BUILTIN_PROVIDERS,
    Catalogue,
    CatalogueRow,
    Deployment,
    DeploymentsAdmin,
    Gateway,
    GatewayConfig,
    GatewayStore,
    ProviderKeysHandle,
    ProviderRegistry,
    RedisDeploymentLimits,
    RetryPolicy,
    catalogue_of,
    load_gateway_config_file,
)
from deskpilot.metered import MeteredWork
from deskpilot.metering import Meter, MeteringAdmin, PriceTable, UsageHandle, ensure_partitions
from deskpilot.quotas import Dimension, QuotaService, QuotaStatus, quota_backend
from deskpilot.rag import (
    JobWorker,
    KnowledgeHandle,
    LocalEmbedder,
    RagRuntime,
    unscoped_resume_dense_indexes,
)
from deskpilot.storage_measurement import Measurement, measure_storage
from deskpilot.tenancy import (
    ConfigHandle,
    CredentialResolver,
    KeysHandle,
    OwnTenantHandle,
    TenancyAdmin,
    Tenant,
    new_operator_token,
    record_platform_change,
)

log = logging.getLogger(__name__)


def operator_token(settings: Settings) -> str:
    """``DESKPILOT_ADMIN_TOKEN``, or one generated once into ``DESKPILOT_HOME/admin-token``."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    # race-free: processes starting together on a new home all read the one token written
    return private_file_once(settings.admin_token_file, new_operator_token).strip()


MAINTENANCE_SECONDS = 6 * 3600
MAINTENANCE_FIRST_SECONDS = 60  # soon after start, so short-lived processes still measure


class Platform:
    def __init__(
        self,
        resources: Resources,
        bus: InvalidationBus,
        components: Sequence[Component],
        prices: PriceTable,
        gateway_config: GatewayConfig | None = None,
    ) -> None:
        self.resources = resources
        self.components = tuple(components)
        self._bus = bus
        settings = resources.settings
        self.resolver = CredentialResolver(
            resources.db,
            resources.schema,
            bus,
            fresh_seconds=settings.auth_cache_seconds,
            stale_seconds=settings.auth_stale_seconds,
        )
        resources.db.on_commit(bus.publish)
        self.operator_token = operator_token(settings)
        self.secrets = SecretBox.from_settings(settings)
        self.gateway_store = GatewayStore(resources, self.secrets, bus)
        self.meter = Meter(resources, prices)
        self.quotas = QuotaService(resources, quota_backend(resources))
        self.meter.on_durable(self.quotas.on_durable)
        self._gateway_config = gateway_config
        retries = gateway_config.retries if gateway_config else None
        self.gateway = Gateway(
            catalogue=catalogue_of(gateway_config),
            prices=prices,
            metered=self.metered,
            providers=ProviderRegistry(BUILTIN_PROVIDERS),
            policy=RetryPolicy() if retries is None else RetryPolicy(max_retries=retries),
            own_keys=lambda tenant: self.gateway_store.own_keys(tenant=tenant),
            limits=None if resources.redis is None else RedisDeploymentLimits(resources.redis),
        )
        self._own_gateway = self.gateway  # what reloads update, even if a test swaps .gateway
        self.gateway_store.use_file_deployments(lambda: self._gateway_config)
        self.gateway_store.use_known_families(lambda: self.gateway.catalogue.families())
        self.gateway_store.on_deployments_change(self._deployments_changed)
        embed_threads = settings.rag_embed_threads
        self.rag = RagRuntime(
            resources,
            lambda: LocalEmbedder.shared(threads=embed_threads),
            self._own_gateway,
            self.metered,
            self.quotas,
            context_for=self._context_for,
        )
        self._maintenance: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls,
        settings: Settings | None = None,
        *,
        run_migrations: bool = True,
        components: Sequence[Component] = BUILTIN,
    ) -> Platform:
        settings = settings or Settings()
        schema = ConfigSchema([s for c in components for s in c.config_sections])
        gateway_config = None
        if settings.gateway_config is not None:  # refused before anything starts
            gateway_config = load_gateway_config_file(settings.gateway_config).config
        db = await Database.open(settings)
        redis = None
        try:
            if run_migrations:
                await migrate(db)
            prices = PriceTable.load_file(
                settings.prices_file,
                deployments=gateway_config.price_overrides() if gateway_config else None,
            )
            # (an unmigrated database is reported by whoever asked not to migrate)
            current = run_migrations or await current_revision(db) == head_revision()
            if current:
                await ensure_partitions(db, datetime.now(UTC))
            redis = await open_redis(settings)
            bus = InvalidationBus() if redis is None else RedisInvalidationBus(redis)
            await bus.start()
        except BaseException:
            if redis is not None:
                await redis.aclose()
            await db.close()
            raise
        try:
            platform = cls(
                Resources(settings, db, schema, redis), bus, components, prices, gateway_config
            )
            if current:
                await platform.gateway_store.start()
                await platform.reload_deployments()
        except BaseException:
            await bus.stop()
            if redis is not None:
                await redis.aclose()
            await db.close()
            raise
        platform.gateway.warm_up()
        platform._maintenance = asyncio.create_task(
            platform._maintain(), name="deskpilot-maintenance"
        )
        platform._workers = [
            asyncio.create_task(JobWorker(platform.rag).run_forever(), name=f"rag-jobs-{n}")
            for n in range(settings.rag_job_workers if current else 0)
        ]
        return platform

    async def _maintain(self) -> None:
        """Monthly ledger partitions ahead of time; expired reservations and old rate windows;
        storage measurements."""
        delay = MAINTENANCE_FIRST_SECONDS
        while True:
            await asyncio.sleep(delay)
            delay = MAINTENANCE_SECONDS
            try:
                await ensure_partitions(self.resources.db, datetime.now(UTC))
                await self.quotas.unscoped_purge_expired()
                await self.measure_storage()
                await unscoped_resume_dense_indexes(self.rag)
            except Exception:
                log.exception("maintenance failed; retrying at the next interval")

    async def close(self) -> None:
        for task in [*self._workers, *([self._maintenance] if self._maintenance else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.rag.close()  # background index builds stop; a restart resumes them
        await self.gateway_store.stop()
        await self.gateway.close()  # usage of streams still finishing reaches the meter
        await self.meter.close()  # flushes queued usage before the database goes
        await self._bus.stop()
        if self.resources.redis is not None:
            await self.resources.redis.aclose()
        await self.resources.db.close()

    async def __aenter__(self) -> Platform:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def authenticate(self, api_key: str, *, client_ip: str | None = None) -> TenantContext:
        return await self.resolver.resolve(api_key, client_ip=client_ip)

    async def _context_for(self, tenant_id: str) -> TenantContext:
        """A tenant's context for work the platform does on its behalf (background jobs)."""
        return await self.admin(OperatorContext(principal="platform")).context_for(tenant_id)

    def _deployments_changed(self) -> None:
        self._own_gateway.spawn(self.reload_deployments())

    async def reload_deployments(self) -> None:
        """Serve the deployments file's and the stored deployments (admin API, CLI), with their
        prices: at start, and whenever a stored deployment changes (every process)."""
        try:
            rows = await self.gateway_store.load_catalogue_rows()
        except Exception:
            log.exception("loading the stored deployments failed; serving the previous ones")
            return
        catalogue, overrides = merged_catalogue(self._gateway_config, rows)
        prices = PriceTable.load_file(self.resources.settings.prices_file, deployments=overrides)
        self.meter.prices = prices
        self._own_gateway.prices = prices
        self._own_gateway.use_catalogue(catalogue)

    def tenant(self, tenant: TenantContext) -> TenantHandle:
        return TenantHandle(
            self.resources,
            tenant,
            prices=self.meter.prices,
            quotas=self.quotas,
            gateway_store=self.gateway_store,
            rag=self.rag,
        )

    async def measure_storage(self) -> int:
        """Run every component's storage probes for every tenant (maintenance does this every
        few hours, so at least daily); returns the tenants measured."""
        probes = [probe for c in self.components for probe in c.storage_probes]
        admin = self.admin(OperatorContext(principal="maintenance"))
        job = Measurement(self.resources, admin, self.meter, self.quotas, probes)
        return await measure_storage(job)

    def metered(
        self,
        *,
        tenant: TenantContext,
        request_id: str,
        reserve: Mapping[Dimension, Decimal | int],
        lease_seconds: float = 120.0,
    ) -> MeteredWork:
        """Reserve quota, then record usage durably, then settle (see ``deskpilot.metered``)."""
        return MeteredWork(
            self.meter,
            self.quotas,
            tenant=tenant,
            request_id=request_id,
            reserve=reserve,
            lease_seconds=lease_seconds,
        )

    def admin(self, operator: OperatorContext) -> AdminHandle:
        steps = [step for c in self.components for step in c.purge_steps]
        return AdminHandle(self, operator, steps)


def merged_catalogue(
    config: GatewayConfig | None, rows: Sequence[CatalogueRow]
) -> tuple[Catalogue, dict[str, object]]:
    """The deployments file's catalogue with the stored deployments added under their aliases
    (after the file's, so an alias in both balances over all), and the price overrides of
    both (the file's and the stored deployments' prices)."""
    deployments: dict[str, list[Deployment]] = {
        alias: list(ds) for alias, ds in (config.deployments if config else {}).items()
    }
    for row in rows:
        deployments.setdefault(row.alias, []).append(row.deployment)
    prices = (*(config.prices if config else ()), *(r.price for r in rows if r.price))
    catalogue = Catalogue(
        {alias: tuple(ds) for alias, ds in deployments.items()},
        config.fallbacks if config else {},
        config.default_alias if config else None,
    )
    return catalogue, GatewayConfig(deployments={}, prices=prices).price_overrides()


class TenantHandle:
    """Everything one tenant may do to its own data, one attribute per component."""

    def __init__(
        self,
        resources: Resources,
        tenant: TenantContext,
        *,
        prices: PriceTable,
        quotas: QuotaService,
        gateway_store: GatewayStore,
        rag: RagRuntime,
        as_operator: bool = False,
    ) -> None:
        self.context = tenant
        self._own = OwnTenantHandle(resources, tenant)
        self._quotas = quotas
        self.keys = KeysHandle(resources, tenant)
        self.config = ConfigHandle(resources, tenant, as_operator=as_operator)
        self.usage = UsageHandle(resources, prices, tenant)
        self.provider_keys = ProviderKeysHandle(resources, tenant, gateway_store)
        self.kb = KnowledgeHandle(rag, tenant)

    async def quota_status(self) -> list[QuotaStatus]:
        """Each limited dimension now: limit, used (incl. held), reset time, state."""
        self.context.require(Scope.USAGE_READ)
        return await self._quotas.status(tenant=self.context)

    async def get(self) -> Tenant:
        return await self._own.get()


class AdminHandle(TenancyAdmin):
    """Platform-operator actions, plus acting on one tenant with every component's handle."""

    def __init__(
        self, platform: Platform, operator: OperatorContext, purge_steps: Sequence[PurgeStep]
    ) -> None:
        super().__init__(platform.resources, operator, purge_steps)
        self._platform = platform
        self.usage = MeteringAdmin(platform.resources, operator)
        self.deployments = DeploymentsAdmin(platform.resources, operator, platform.gateway_store)

    async def on_tenant(self, tenant_id: str) -> TenantHandle:
        platform = self._platform
        return TenantHandle(
            self._resources,
            await self.context_for(tenant_id),
            prices=platform.meter.prices,
            quotas=platform.quotas,
            gateway_store=platform.gateway_store,
            rag=platform.rag,
            as_operator=True,
        )

    async def rotate_secrets(self) -> list[RotationReport]:
        """Re-encrypt every stored secret with the current master key (``DESKPILOT_SECRET_KEY``),
        each component's stores in turn; recorded in the platform audit log."""
        box = self._platform.secrets
        reports = [
            await rotate(self._resources, box)
            for component in self._platform.components
            for rotate in component.secret_rotations
        ]
        async with self._db.dangerously_unscoped_session() as session:
            record_platform_change(
                session,
                operator=self.operator,
                action="secrets.rotate",
                target=box.key_id,
                new={"stores": [asdict(report) for report in reports]},
            )
        return reports
