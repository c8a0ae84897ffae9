"""``deskpilot kb ...``, ``deskpilot ingest``, ``deskpilot ask`` and ``deskpilot eval retrieval``,
run as from a shell against the embedded database."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Invoke, json_out, ok, refused, slug
from tests.rag.corpus import ARTICLES


def tenant_with_kb(invoke: Invoke, name: str = "runbooks") -> str:
    tenant = slug("kb")
    ok(invoke("tenants", "create", tenant, "--name", "Knowledge", "--tier", "pro"))
    ok(invoke("kb", "create", "--tenant", tenant, name, "--config", '{"retrieval": {"top_k": 3}}'))
    return tenant


def test_knowledge_bases_are_created_listed_shown_and_deleted(invoke: Invoke) -> None:
    tenant = tenant_with_kb(invoke)
    [listed] = json_out(invoke("kb", "list", "--tenant", tenant, "--json"))
    assert (listed["name"], listed["config"]) == ("runbooks", {"retrieval": {"top_k": 3}})
    shown = json_out(invoke("kb", "show", "--tenant", tenant, "runbooks", "--json"))
    assert shown["embedder"].startswith("local/")
    assert "unknown" in refused(invoke("kb", "show", "--tenant", tenant, "unknown"))
    bad = refused(invoke("kb", "create", "--tenant", tenant, "other", "--config", "{not json"))
    assert "--config is not JSON" in bad
    ok(invoke("kb", "delete", "--tenant", tenant, "runbooks", "--yes"))
    assert json_out(invoke("kb", "list", "--tenant", tenant, "--json")) == []


def test_ingest_reads_folders_reports_bad_files_and_search_finds_them(
    invoke: Invoke, tmp_path: Path
) -> None:
    tenant = tenant_with_kb(invoke)
    folder = tmp_path / "articles"
    folder.mkdir()
    for name, text in ARTICLES.items():
        (folder / name).write_text(text)
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4 not really")
    (folder / ".hidden.md").write_text("# Ignored")
    result = invoke("ingest", "--tenant", tenant, "--kb", "runbooks", str(folder), "--json")
    assert result.exit_code == 1, result.output
    outcomes = json.loads(result.stdout)
    assert len(outcomes) == len(ARTICLES) + 1
    [failed] = [o for o in outcomes if "error" in o]
    assert failed["file"].endswith("scan.pdf")
    assert failed["error"].startswith("corrupt_document")
    again = ok(invoke("ingest", "--tenant", tenant, "--kb", "runbooks", str(folder / "vpn.md")))
    assert "0 created, 0 updated, 1 unchanged" in again.stderr
    found = json_out(invoke("kb", "search", "--tenant", tenant, "outbox stuck", "--json"))
    assert found["hits"][0]["external_id"] == "outlook.md"
    assert len(found["hits"]) == 3  # the knowledge base's top_k
    answer = ok(invoke("ask", "--tenant", tenant, "how do I add the printer on floor 3"))
    assert "[1]" in answer.stdout
    assert "printer.md" in answer.stdout or "Adding a network printer" in answer.stdout


def test_ingest_into_a_missing_knowledge_base_stops(invoke: Invoke, tmp_path: Path) -> None:
    tenant = tenant_with_kb(invoke)
    note = tmp_path / "note.txt"
    note.write_text("Restart the spooler.")
    assert "no knowledge base named 'other'" in refused(
        invoke("ingest", "--tenant", tenant, "--kb", "other", str(note))
    )


def test_eval_retrieval_prints_the_metrics_as_the_last_line(invoke: Invoke, tmp_path: Path) -> None:
    data = tmp_path / "beir"
    (data / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": name, "title": text.splitlines()[0][2:], "text": text}
        for name, text in ARTICLES.items()
    ]
    corpus.append({"_id": "junk", "title": "", "text": "\x01\x02\x03\x04 binary " * 40})
    queries = [
        {"_id": "q1", "text": "vpn keeps dropping"},
        {"_id": "q2", "text": "outbox stuck"},
        {"_id": "q3", "text": "forgot my password"},
    ]
    (data / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus))
    (data / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (data / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\tvpn.md\t1\nq2\toutlook.md\t1\nq3\tpassword.md\t1\n"
    )
    result = ok(invoke("eval", "retrieval", str(data), "--json"))
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report) >= {"keyword", "dense", "hybrid", "docs_per_s", "query_p50_ms"}
    assert report["hybrid"]["ndcg@10"] == 1.0
    assert report["documents"] == len(ARTICLES) + 1
    assert report["skipped"] == 1  # refused by ingestion (binary), left out, reported
    assert report["queries"] == 3
    missing = refused(invoke("eval", "retrieval", str(tmp_path / "nowhere")))
    assert "corpus.jsonl" in missing
