"""The knowledge-base routes over HTTP: every upload shape, every refusal as a problem document
(nothing stored), jobs, search, answers and scopes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from deskpilot.core.context import OperatorContext, Scope
from deskpilot.platform import Platform
from deskpilot.tenancy.schemas import KeyCreate
from tests.conftest import TenantFixture
from tests.rag.conftest import rows_of
from tests.rag.corpus import ARTICLES, VPN
from tests.unit.test_rag_parsing import make_docx, make_pdf, w_para

BASE = "/v1/knowledge-bases"


async def create(client: httpx.AsyncClient, tenant: TenantFixture, name: str = "runbooks") -> None:
    response = await client.post(BASE, json={"name": name}, headers=tenant.headers)
    assert response.status_code == 201, response.text


async def test_knowledge_bases_are_created_configured_listed_and_deleted(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    headers = tenant_a.headers
    made = await client.post(
        BASE,
        json={"name": "runbooks", "config": {"chunking": {"max_tokens": 120}}},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["embedder"].startswith("local/")
    again = await client.post(BASE, json={"name": "runbooks"}, headers=headers)
    assert (again.status_code, again.json()["type"]) == (409, "conflict")
    bad = await client.post(
        BASE, json={"name": "x", "config": {"chunking": {"max_tokens": 5}}}, headers=headers
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "config.chunking.max_tokens"
    patched = await client.patch(
        f"{BASE}/runbooks",
        json={"description": "fixes", "config": {"retrieval": {"top_k": 3}}},
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["config"] == {"chunking": {"max_tokens": 120}, "retrieval": {"top_k": 3}}
    listed = await client.get(BASE, headers=headers)
    assert [k["name"] for k in listed.json()] == ["runbooks"]
    assert (await client.delete(f"{BASE}/runbooks", headers=headers)).status_code == 204
    gone = await client.get(f"{BASE}/runbooks", headers=headers)
    assert (gone.status_code, gone.json()["type"]) == (404, "not_found")
    assert (await client.get(f"{BASE}/Not_A_Name", headers=headers)).status_code == 422


async def test_documents_arrive_as_json_multipart_or_a_raw_file(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await create(client, tenant_a)
    url, headers = f"{BASE}/runbooks/documents", tenant_a.headers
    as_json = await client.post(
        url,
        json={"text": "Restart the print spooler.", "title": "Spooler", "external_id": "spool"},
        headers=headers,
    )
    assert as_json.status_code == 201, as_json.text
    pdf = make_pdf([["VPN certificate renewal", "Delete the expired certificate."]], title="VPN")
    docx = make_docx(w_para("Password policy", style="Heading1") + w_para("Fourteen characters."))
    csv = b"id,title,body\nINC1,VPN drops,Updated the client\nINC2,Printer offline,Power-cycled"
    files = [
        ("file", ("vpn.md", VPN.encode(), "text/markdown")),
        ("file", ("vpn.pdf", pdf, "application/pdf")),
        ("file", ("policy.docx", docx, "application/octet-stream")),
        ("file", ("incidents.csv", csv, "text/csv")),
    ]
    form = {"metadata": json.dumps({"team": "desk"}), "id_field": "id", "title_field": "title"}
    multipart = await client.post(url, files=files, data=form, headers=headers)
    assert multipart.status_code == 201, multipart.text
    outcomes = {d["external_id"]: d["outcome"] for d in multipart.json()["documents"]}
    assert outcomes == {
        "vpn.md": "created", "vpn.pdf": "created", "policy.docx": "created",
        "INC1": "created", "INC2": "created",
    }  # fmt: skip
    raw = await client.post(
        f"{url}?filename=notes.html",
        content=b"<h1>Printer</h1><p>Floor 3 printers use PRN-03.</p>",
        headers={**headers, "Content-Type": "text/html"},
    )
    assert raw.status_code == 201, raw.text
    listed = (await client.get(url, headers=headers)).json()
    assert len(listed) == 7
    docs = {d["external_id"]: d for d in listed}
    assert docs["policy.docx"]["format"] == "docx"
    assert docs["INC1"]["metadata"]["team"] == "desk"
    one = await client.get(f"{url}/{docs['vpn.pdf']['document_id']}", headers=headers)
    assert "Delete the expired certificate." in one.json()["text"]
    chunks = await client.get(f"{url}/{docs['vpn.pdf']['document_id']}/chunks", headers=headers)
    assert chunks.json()[0]["page_start"] == 1


@pytest.mark.parametrize(
    ("content", "content_type", "status", "problem"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 32, "image/png", 415, "unsupported_media_type"),
        (b"%PDF-1.4 cut short", "application/pdf", 422, "corrupt_document"),
        (b"PK\x03\x04 not really a zip", "application/octet-stream", 415, "unsupported_media_type"),
        (b"   \n\n  ", "text/plain", 422, "empty_document"),
        (b"[{", "application/json", 422, "validation_error"),
    ],
)
async def test_a_bad_upload_is_a_problem_and_stores_nothing(
    platform: Platform,
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    content: bytes,
    content_type: str,
    status: int,
    problem: str,
) -> None:
    await create(client, tenant_a)
    response = await client.post(
        f"{BASE}/runbooks/documents",
        content=content,
        headers={**tenant_a.headers, "Content-Type": content_type},
    )
    assert (response.status_code, response.json()["type"]) == (status, problem), response.text
    assert await rows_of(platform, tenant_a.slug, "rag_documents") == 0


async def test_a_file_over_the_tenants_limit_is_refused(
    platform: Platform, client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    handle = await platform.admin(OperatorContext(principal="pytest")).on_tenant(tenant_a.slug)
    await handle.config.patch({"rag_limits": {"upload_bytes": 2048}})
    await create(client, tenant_a)
    big = ("Restart the relay. " * 200).encode()
    files = [("file", ("big.txt", big, "text/plain"))]
    response = await client.post(
        f"{BASE}/runbooks/documents", files=files, headers=tenant_a.headers
    )
    assert (response.status_code, response.json()["type"]) == (413, "document_too_large")
    assert await rows_of(platform, tenant_a.slug, "rag_documents") == 0


async def test_a_large_upload_becomes_a_job_with_a_status_route(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await create(client, tenant_a)
    files = [("file", (n, t.encode(), "text/markdown")) for n, t in ARTICLES.items()]
    queued = await client.post(
        f"{BASE}/runbooks/documents?background=true", files=files, headers=tenant_a.headers
    )
    assert queued.status_code == 202, queued.text
    job_url = f"{BASE}/runbooks/jobs/{queued.json()['job_id']}"
    for _ in range(600):
        job = (await client.get(job_url, headers=tenant_a.headers)).json()
        if job["status"] not in {"queued", "running"}:
            break
        await asyncio.sleep(0.05)
    assert (job["status"], job["succeeded"]) == ("succeeded", len(ARTICLES))
    other = await client.get(f"{BASE}/other/jobs/{job['job_id']}", headers=tenant_a.headers)
    assert other.status_code == 404


async def test_search_and_ask_over_http(client: httpx.AsyncClient, tenant_a: TenantFixture) -> None:
    await create(client, tenant_a)
    files = [("file", (n, t.encode(), "text/markdown")) for n, t in ARTICLES.items()]
    await client.post(f"{BASE}/runbooks/documents", files=files, headers=tenant_a.headers)
    found = await client.post(
        "/v1/search", json={"query": "outbox stuck", "top_k": 2}, headers=tenant_a.headers
    )
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    assert body["hits"][0]["external_id"] == "outlook.md"
    assert len(body["hits"]) == 2
    scoped = await client.post(
        f"{BASE}/runbooks/search",
        json={"query": "printer", "mode": "keyword"},
        headers=tenant_a.headers,
    )
    assert scoped.json()["mode"] == "keyword"
    answer = await client.post(
        "/v1/ask", json={"question": "printer floor 3"}, headers=tenant_a.headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["citations"]
    missing = await client.post(
        "/v1/search", json={"query": "x", "knowledge_bases": ["nope"]}, headers=tenant_a.headers
    )
    assert missing.status_code == 404
    empty = await client.post("/v1/search", json={"query": ""}, headers=tenant_a.headers)
    assert (empty.status_code, empty.json()["errors"][0]["path"]) == (422, "query")


async def test_a_read_only_key_searches_but_cannot_write(
    platform: Platform, client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await create(client, tenant_a)
    created = await platform.tenant(tenant_a.context).keys.create(
        KeyCreate(name="widget", scopes=(Scope.KB_READ,))
    )
    headers = {"Authorization": f"Bearer {created.secret}"}
    assert (
        await client.post("/v1/search", json={"query": "vpn"}, headers=headers)
    ).status_code == 200
    refused = await client.post(f"{BASE}/runbooks/documents", json={"text": "x"}, headers=headers)
    assert (refused.status_code, refused.json()["type"]) == (403, "missing_scope")
    assert (await client.delete(f"{BASE}/runbooks", headers=headers)).status_code == 403
