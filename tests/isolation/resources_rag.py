"""The knowledge bases in the isolation suite: A's knowledge base, document, chunks, terms and a
background job, tried by B through every path.

B's paths that take a knowledge base name are tried with B holding a knowledge base *of the
same name* (``prepare``), holding documents of its own: a path that looked documents up by name
or id without the tenant would find A's. B's searches ask for A's distinctive words; B's
results must hold none of A's markers, and A's knowledge base must be as it was.
"""

from __future__ import annotations

import uuid
from typing import Any

from deskpilot.core.errors import NotFound
from deskpilot.platform import Platform
from deskpilot.rag import Upload
from tests.conftest import TenantFixture
from tests.isolation.registry import HttpPath, PythonPath, Resource, Seeded, marker, register

KB = "shared-name"  # A's and B's knowledge bases share a name; A's description is a marker


def _word(label: str) -> str:
    return f"{label}{uuid.uuid4().hex[:10]}"  # one token for the analyser: letters and digits


async def seed(platform: Platform, a: TenantFixture) -> Seeded:
    description = marker("kb-description")
    secret_word, title_word = _word("zorblax"), _word("quendi")
    external = marker("runbook")
    handle = platform.tenant(a.context).kb
    await handle.create({"name": KB, "description": description})
    [doc] = await handle.ingest(
        KB,
        Upload(
            content=f"Restart the {secret_word} relay when the VPN drops.\n\n"
            f"Then check the {secret_word} certificate.".encode(),
            media_type="text/plain",
            external_id=external,
            title=f"VPN {title_word} runbook",
        ),
    )
    job = await handle.submit(
        KB, [Upload(content=f"Queued {secret_word} notes.".encode(), filename=f"{external}.txt")]
    )
    return Seeded(
        ids={"kb": KB, "document_id": doc.document_id, "job_id": job.job_id},
        markers=frozenset(
            {description, secret_word, title_word, external, doc.document_id, job.job_id}
        ),
        extra={"secret_word": secret_word},
    )


async def intact(platform: Platform, a: TenantFixture, seeded: Seeded) -> None:
    handle = platform.tenant(a.context).kb
    document = await handle.document(KB, seeded.ids["document_id"])
    assert seeded.extra["secret_word"] in document.text
    assert (await handle.get(KB)).document_count >= 1
    found = await handle.search({"query": seeded.extra["secret_word"], "mode": "keyword"})
    assert seeded.ids["document_id"] in {h.document_id for h in found.hits}
    assert (await handle.job(seeded.ids["job_id"])).knowledge_base == KB


async def same_name(platform: Platform, b: TenantFixture) -> TenantFixture:
    """B holds a knowledge base named like A's, with a document of its own."""
    handle = platform.tenant(b.context).kb
    try:
        await handle.get(KB)
    except NotFound:
        await handle.create({"name": KB})
        await handle.ingest(
            KB, Upload(content=b"Reset the VPN relay certificate.", media_type="text/plain")
        )
    return b


def _kb(call: Any) -> Any:
    async def run(platform: Platform, b: TenantFixture, seeded: Seeded) -> Any:
        return await call(platform.tenant(b.context).kb, seeded)

    return run


def _search_body(seeded: Seeded) -> dict[str, Any]:
    return {"query": f"{seeded.extra['secret_word']} relay certificate", "top_k": 20}


def _py(name: str, kind: Any, call: Any, *, prepared: bool = True) -> PythonPath:
    return PythonPath(name, kind, _kb(call), prepare=same_name if prepared else None)


def _http(name: str, kind: Any, method: str, path: str, body: Any = None) -> HttpPath:
    return HttpPath(name, kind, method, path, body=body, prepare=same_name)


PYTHON = (
    _py("list", "list", lambda kb, s: kb.list()),
    _py("list without a same-named base", "list", lambda kb, s: kb.list(), prepared=False),
    _py("get by name", "read", lambda kb, s: kb.get(KB)),
    _py("get without a same-named base", "read", lambda kb, s: kb.get(KB), prepared=False),
    _py("update by name", "update", lambda kb, s: kb.update(KB, {"description": "mine"})),
    _py("delete by name", "delete", lambda kb, s: kb.delete(KB)),
    _py("documents", "list", lambda kb, s: kb.documents(KB)),
    _py("document by id", "read", lambda kb, s: kb.document(KB, s.ids["document_id"])),
    _py("chunks by id", "read", lambda kb, s: kb.chunks(KB, s.ids["document_id"])),
    _py("delete document", "delete", lambda kb, s: kb.delete_document(KB, s.ids["document_id"])),
    _py("job by id", "read", lambda kb, s: kb.job(s.ids["job_id"])),
    _py("jobs", "list", lambda kb, s: kb.jobs(KB)),
    _py("search", "search", lambda kb, s: kb.search(_search_body(s))),
    _py(
        "keyword search", "search", lambda kb, s: kb.search({**_search_body(s), "mode": "keyword"})
    ),
    _py("dense search", "search", lambda kb, s: kb.search({**_search_body(s), "mode": "dense"})),
    _py("ask", "search", lambda kb, s: kb.ask({"question": _search_body(s)["query"]})),
    _py(
        "ingest into the same name",
        "update",
        lambda kb, s: kb.ingest(KB, Upload(content=b"B's own text.", media_type="text/plain")),
    ),
)

HTTP = (
    _http("list", "list", "GET", "/v1/knowledge-bases"),
    _http("get by name", "read", "GET", "/v1/knowledge-bases/{kb}"),
    _http(
        "update by name",
        "update",
        "PATCH",
        "/v1/knowledge-bases/{kb}",
        body=lambda s: {"description": "mine"},
    ),
    _http("delete by name", "delete", "DELETE", "/v1/knowledge-bases/{kb}"),
    _http("documents", "list", "GET", "/v1/knowledge-bases/{kb}/documents"),
    _http("document by id", "read", "GET", "/v1/knowledge-bases/{kb}/documents/{document_id}"),
    _http("chunks", "read", "GET", "/v1/knowledge-bases/{kb}/documents/{document_id}/chunks"),
    _http(
        "delete document", "delete", "DELETE", "/v1/knowledge-bases/{kb}/documents/{document_id}"
    ),
    _http("job by id", "read", "GET", "/v1/knowledge-bases/{kb}/jobs/{job_id}"),
    _http("jobs", "list", "GET", "/v1/knowledge-bases/{kb}/jobs"),
    _http("search all", "search", "POST", "/v1/search", body=_search_body),
    _http("search by name", "search", "POST", "/v1/knowledge-bases/{kb}/search", body=_search_body),
    _http(
        "ask", "search", "POST", "/v1/ask", body=lambda s: {"question": _search_body(s)["query"]}
    ),
    _http(
        "add document by name",
        "update",
        "POST",
        "/v1/knowledge-bases/{kb}/documents",
        body=lambda s: {"text": "B's own text.", "external_id": "b-own"},
    ),
)

register(
    Resource(
        name="knowledge_base",
        component="rag",
        tables=(
            "rag_knowledge_bases",
            "rag_documents",
            "rag_chunks",
            "rag_chunk_vectors",
            "rag_chunk_terms",
            "rag_postings",
            "rag_terms",
            "rag_jobs",
            "rag_job_items",
        ),
        seed=seed,
        intact=intact,
        python_paths=PYTHON,
        http_paths=HTTP,
    )
)
