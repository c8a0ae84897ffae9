"""``DirectRoutes``: the gateway's hot routes go straight to their endpoint; everything else,
and every error, behaves as through FastAPI's router."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from deskpilot.core.errors import NotFound
from deskpilot.core.http import DirectRoutes


class UnhandledError(Exception):
    pass


async def direct(request: Request) -> Response:
    what = request.query_params.get("raise")
    if what == "not_found":
        raise NotFound("no such thing")
    if what == "unhandled":
        raise UnhandledError("boom")
    return JSONResponse({"served_by": "direct", "body": (await request.body()).decode()})


def app() -> FastAPI:
    made = FastAPI()

    @made.post("/hot")
    async def hot_via_router() -> dict[str, str]:
        return {"served_by": "router"}

    @made.get("/hot")
    async def hot_get() -> dict[str, str]:
        return {"served_by": "router"}

    @made.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"handled": exc.detail}, status_code=404)

    @made.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"server_error": type(exc).__name__}, status_code=500)

    made.add_middleware(DirectRoutes, routes={("POST", "/hot"): direct})
    return made


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as opened:
        yield opened


async def test_the_route_is_served_directly(client: httpx.AsyncClient) -> None:
    answer = await client.post("/hot", content=b"payload")
    assert answer.json() == {"served_by": "direct", "body": "payload"}


async def test_other_methods_and_paths_go_through_the_router(client: httpx.AsyncClient) -> None:
    assert (await client.get("/hot")).json() == {"served_by": "router"}
    assert (await client.post("/cold")).status_code == 404


async def test_an_error_gets_the_apps_handler(client: httpx.AsyncClient) -> None:
    answer = await client.post("/hot?raise=not_found")
    assert (answer.status_code, answer.json()) == (404, {"handled": "no such thing"})


async def test_an_unhandled_error_reaches_the_server_error_handler(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/hot?raise=unhandled")
    assert (answer.status_code, answer.json()) == (500, {"server_error": "UnhandledError"})


async def test_under_a_root_path_the_router_serves(client: httpx.AsyncClient) -> None:
    transport = httpx.ASGITransport(app=app(), root_path="/prefix")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as prefixed:
        assert (await prefixed.post("/prefix/hot")).json() == {"served_by": "router"}
