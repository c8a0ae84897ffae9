"""The FastAPI app factory. Everything long-lived is built in the lifespan, nothing at import.

``uvicorn --factory deskpilot.app:create_app`` or ``deskpilot serve``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from deskpilot import __version__
from deskpilot.core.http import (
    BodySizeLimitMiddleware,
    DirectRoutes,
    RequestContextMiddleware,
    install_error_handlers,
)
from deskpilot.core.logging import configure_logging
from deskpilot.core.settings import Settings
from deskpilot.gateway import api as gateway_api
from deskpilot.gateway.store.api import admin_deployments, tenant_provider_keys
from deskpilot.metering.api import admin_usage, tenant_usage
from deskpilot.platform import Platform
from deskpilot.rag.api import router as rag_router
from deskpilot.tenancy.api import admin, tenant_api

READY_TIMEOUT = 2.0


def create_app(
    settings: Settings | None = None,
    *,
    platform: Platform | None = None,
    run_migrations: bool = True,
) -> FastAPI:
    """Build the app. Pass ``platform`` to serve an already open one (tests, embedding)."""
    settings = settings or (platform.resources.settings if platform else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if platform is not None:  # owned by the caller
            yield
            return
        configure_logging(level=settings.log_level, json=settings.log_json)
        opened = await Platform.open(settings, run_migrations=run_migrations)
        app.state.platform = opened
        try:
            yield
        finally:
            await opened.close()

    app = FastAPI(
        title="deskpilot",
        version=__version__,
        summary="Multi-tenant AI core for IT service management.",
        lifespan=lifespan,
    )
    if platform is not None:
        app.state.platform = platform
    install_error_handlers(app)
    gateway_api.install(app)  # first: the hottest routes match without trying the others
    app.include_router(admin)
    app.include_router(tenant_api)
    app.include_router(admin_usage)
    app.include_router(tenant_usage)
    app.include_router(admin_deployments)
    app.include_router(tenant_provider_keys)
    app.include_router(rag_router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up (no dependency is checked)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "a dependency is down"}})
    async def readyz(request: Request) -> JSONResponse:
        """The database (and Redis, when configured) answer within two seconds."""
        current: Platform = request.app.state.platform
        checks: dict[str, str] = {}
        checks["database"] = await _check(current.resources.db.ping())
        if current.resources.redis is not None:
            checks["redis"] = await _check(current.resources.redis.ping())
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    # Innermost first: the body limit and then the request id wrap the direct routes too.
    app.add_middleware(DirectRoutes, routes=gateway_api.DIRECT_ROUTES)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app


async def _check(probe: object) -> str:
    try:
        await asyncio.wait_for(probe, timeout=READY_TIMEOUT)  # type: ignore[arg-type]
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"
