"""Answers from a tenant's knowledge bases, with citations.

Retrieve → prompt with numbered passages → the tenant's model through the LLM gateway (routed,
quota-checked and metered there) → the answer with the passages it cited. With no model
configured for the tenant, the answer is extractive: the best passages, cited, and labelled so.

The prompt is built in here until the prompts component owns the role templates.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.errors import DeskpilotError
from deskpilot.quotas import Dimension
from deskpilot.rag.config import Answers
from deskpilot.rag.drafts import context_text
from deskpilot.rag.retrieval import Retrieved, retrieve, targets, usage_event
from deskpilot.rag.runtime import RagRuntime
from deskpilot.rag.schemas import Answer, AskRequest, Citation
from deskpilot.rag.search import Scored

log = logging.getLogger(__name__)

EXTRACTIVE_PASSAGES = 3
CITATION = re.compile(r"\[(\d{1,2})\]")
SYSTEM = (
    "You answer questions for an IT service desk using only the numbered passages from the "
    "organisation's knowledge base. Cite each statement with the numbers of the passages it "
    "comes from in square brackets, like [1] or [2][3]. If the passages do not answer the "
    "question, say that the knowledge base does not cover it; do not guess."
)
NO_MODEL = "No language model is configured for this tenant: these are the best passages."
NO_PASSAGES = "The knowledge bases hold nothing that matches the question."


async def ask(
    rt: RagRuntime, request: AskRequest, *, tenant: TenantContext, request_id: str
) -> Answer:
    tenant.require(Scope.KB_READ)
    started = time.perf_counter()
    acting = dataclasses.replace(tenant, scopes=tenant.scopes | {Scope.LLM})
    async with rt.db.tenant_session(tenant=tenant) as session:
        found = await targets(session, request.knowledge_bases, tenant=tenant)
    passages = request.top_k or (found[0].config.answers.passages if found else 8)
    settings = found[0].config.answers if found else None
    async with rt.metered(
        tenant=tenant, request_id=request_id, reserve={Dimension.REQUESTS_PER_MINUTE: 1}
    ) as work:
        async with rt.db.tenant_session(tenant=tenant) as session:
            retrieved = await retrieve(
                rt,
                session,
                found,
                request.question,
                mode=None,
                top_k=passages,
                filters=request.filters,
                tenant=tenant,
                request_id=request_id,
            )
        # (the model call holds no database connection)
        answer = await _answer(rt, request, retrieved, settings, acting, request_id)
        await work.record(usage_event("answer", request_id, found, retrieved, started), final=True)
    return answer


async def _answer(
    rt: RagRuntime,
    request: AskRequest,
    retrieved: Retrieved,
    settings: Answers | None,
    acting: TenantContext,
    request_id: str,
) -> Answer:
    if not retrieved.hits:
        return _extractive(request_id, retrieved, NO_PASSAGES)
    if not rt.gateway.models(tenant=acting):
        return _extractive(request_id, retrieved, NO_MODEL)
    alias = request.model or (settings.model_alias if settings else None)
    max_tokens = settings.max_output_tokens if settings else 512
    return await _generated(rt, request.question, retrieved, alias, max_tokens, acting, request_id)


def _passage_text(number: int, scored: Scored) -> str:
    row = scored.row
    return f"[{number}] " + context_text(row["title"], row["headings"], row["text"])


async def _generated(
    rt: RagRuntime,
    question: str,
    retrieved: Retrieved,
    alias: str | None,
    max_tokens: int,
    acting: TenantContext,
    request_id: str,
) -> Answer:
    passages = "\n\n".join(_passage_text(i, s) for i, s in enumerate(retrieved.hits, 1))
    body: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Passages:\n\n{passages}\n\nQuestion: {question}"},
        ],
        "temperature": 0,
        "max_tokens": max_tokens,
    }
    if alias is not None:
        body["model"] = alias
    try:
        served = await rt.gateway.chat(tenant=acting, body=body, request_id=request_id)
    except DeskpilotError as exc:
        if exc.type == "model_required":
            note = "No default model is set: set rag.answers.model_alias (or the gateway default)."
            return _extractive(request_id, retrieved, note)
        if exc.status < 500:
            raise  # the caller's to fix or wait for (not allowed, quota, refused request)
        # The model is configured but down: the sources still help whoever asked.
        log.warning("answer falls back to passages", extra={"error": exc.type})
        note = f"The language model could not answer ({exc.type}): these are the best passages."
        return _extractive(request_id, retrieved, note)
    choices = served.body.get("choices") or [{}]
    content = (choices[0].get("message") or {}).get("content") or ""
    cited = sorted({int(n) for n in CITATION.findall(content) if 0 < int(n) <= len(retrieved.hits)})
    numbers = cited or list(range(1, len(retrieved.hits) + 1))
    return Answer(
        request_id=request_id,
        answer=content,
        kind="generated",
        citations=[_citation(n, retrieved.hits[n - 1], retrieved) for n in numbers],
        model=served.alias,
        deployment=served.deployment,
    )


def _extractive(request_id: str, retrieved: Retrieved, note: str) -> Answer:
    best = retrieved.hits[:EXTRACTIVE_PASSAGES]
    return Answer(
        request_id=request_id,
        answer="\n\n".join(f"[{i}] {s.row['text']}" for i, s in enumerate(best, 1)),
        kind="extractive",
        note=note,
        citations=[_citation(i, s, retrieved) for i, s in enumerate(best, 1)],
    )


def _citation(number: int, scored: Scored, retrieved: Retrieved) -> Citation:
    row = scored.row
    return Citation(
        id=number,
        knowledge_base=retrieved.names[scored.kb_id],
        document_id=scored.document_id,
        external_id=row["external_id"],
        title=row["title"],
        chunk=scored.ordinal,
        char_start=row["char_start"],
        char_end=row["char_end"],
        page_start=row["page_start"],
        page_end=row["page_end"],
        quote=row["text"],
    )


def cited_numbers(answer: str, passages: Sequence[Scored]) -> list[int]:
    return sorted({int(n) for n in CITATION.findall(answer) if 0 < int(n) <= len(passages)})
