"""``deskpilot deployments``, ``provider-keys`` and ``secrets``: credentials come from the
environment or standard input, never from arguments, and are never printed."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.cli.conftest import Invoke, json_out, ok, refused, slug

OPERATOR_KEY = "sk-cli-operator-" + "O" * 24
OWN_KEY = "sk-cli-tenant-own-" + "T" * 20 + "wxYZ"


def add_deployment(invoke: Invoke, family: str) -> str:
    name = slug("dep")
    result = invoke(
        "deployments",
        "add",
        "--alias",
        slug("alias"),
        "--name",
        name,
        "--model",
        "gpt-4o",
        "--api-base",
        "https://api.openai.com/v1",
        "--api-key-env",
        "CLI_TEST_KEY",
        "--key-family",
        family,
        "--input-price",
        "2.5",
        "--output-price",
        "10",
        "--header-env",
        "OpenAI-Organization=CLI_TEST_ORG",
        env={"CLI_TEST_KEY": OPERATOR_KEY, "CLI_TEST_ORG": "org-secret-value"},
    )
    ok(result)
    assert OPERATOR_KEY not in result.output
    return name


def test_deployments_add_list_remove(invoke: Invoke) -> None:
    family = slug("fam")
    name = add_deployment(invoke, family)
    listed = ok(invoke("deployments", "list"))
    assert name in listed.stdout
    assert OPERATOR_KEY not in listed.output
    [view] = [v for v in json_out(invoke("deployments", "list", "--json")) if v["name"] == name]
    assert (view["has_api_key"], view["family"]) == (True, family)
    assert view["extra_header_names"] == ["OpenAI-Organization"]
    assert view["price"]["input"] == "2.500000000000"
    assert "org-secret-value" not in str(view)
    ok(invoke("deployments", "remove", name))
    assert name not in ok(invoke("deployments", "list")).stdout
    assert "no deployment" in refused(invoke("deployments", "remove", name))


def test_deployments_add_refusals(invoke: Invoke) -> None:
    base = ["deployments", "add", "--alias", slug("a"), "--model", "m"]
    missing_env = refused(
        invoke(
            *base,
            "--api-base",
            "https://x.example",
            "--api-key-env",
            "CLI_UNSET_VAR",
            env={"CLI_UNSET_VAR": None},
        )
    )
    assert "CLI_UNSET_VAR" in missing_env
    bad = refused(
        invoke(*base, "--api-base", "ftp://x", "--api-key-env", "K", env={"K": OPERATOR_KEY})
    )
    assert "api_base" in bad
    assert OPERATOR_KEY not in bad
    price = refused(invoke(*base, "--api-base", "https://x.example", "--input-price", "1"))
    assert "--output-price" in price


def test_provider_keys_from_stdin_and_environment(invoke: Invoke) -> None:
    family = slug("fam")
    name = add_deployment(invoke, family)
    tenant = slug("byo")
    ok(invoke("tenants", "create", tenant, "--name", "Byo", "--tier", "enterprise"))

    stored = ok(invoke("provider-keys", "set", "--tenant", tenant, family, input=OWN_KEY + "\n"))
    assert "…wxYZ" in stored.stdout
    assert OWN_KEY not in stored.output
    [key] = json_out(invoke("provider-keys", "list", "--tenant", tenant, "--json"))
    assert (key["family"], key["hint"]) == (family, "…wxYZ")
    assert key["created_by"].startswith("operator:cli:")
    plain = ok(invoke("provider-keys", "list", "--tenant", tenant))
    assert family in plain.stdout
    assert OWN_KEY not in plain.output

    replaced = ok(
        invoke(
            "provider-keys",
            "set",
            "-t",
            tenant,
            family,
            "--api-key-env",
            "OWN",
            env={"OWN": "sk-from-the-environment-0042"},
        )
    )
    assert "…0042" in replaced.stdout
    ok(invoke("provider-keys", "remove", "--tenant", tenant, family))
    assert json_out(invoke("provider-keys", "list", "--tenant", tenant, "--json")) == []
    assert "no key on standard input" in refused(
        invoke("provider-keys", "set", "--tenant", tenant, family, input="")
    )

    ok(invoke("deployments", "remove", name))


def test_provider_keys_refused_off_the_enterprise_tier(invoke: Invoke) -> None:
    family = slug("fam")
    name = add_deployment(invoke, family)
    tenant = slug("nobyo")
    ok(invoke("tenants", "create", tenant, "--name", "No Byo", "--tier", "pro"))
    error = refused(invoke("provider-keys", "set", "--tenant", tenant, family, input=OWN_KEY))
    assert "byo_keys" in error
    assert OWN_KEY not in error
    ok(invoke("deployments", "remove", name))


def test_the_deployments_file_families_count_with_config(invoke: Invoke, tmp_path: Path) -> None:
    tenant = slug("filebyo")
    ok(invoke("tenants", "create", tenant, "--name", "File Byo", "--tier", "enterprise"))
    deployments_file = tmp_path / "deployments.yaml"
    deployments_file.write_text(
        "model_list:\n"
        "  - model_name: eu\n"
        "    litellm_params:\n"
        "      model: azure/gpt-4o-eu\n"
        "      api_base: os.environ/AZURE_BASE_NOT_SET_HERE\n"
        "      api_key: os.environ/AZURE_KEY_NOT_SET_HERE\n"
    )
    without = refused(invoke("provider-keys", "set", "-t", tenant, "azure", input=OWN_KEY))
    assert "family" in without
    ok(
        invoke(
            "provider-keys",
            "set",
            "-t",
            tenant,
            "azure",
            "--config",
            str(deployments_file),
            input=OWN_KEY,
        )
    )


def test_secrets_new_key_and_rotate(invoke: Invoke) -> None:
    printed = ok(invoke("secrets", "new-key")).stdout.strip()
    assert len(base64.b64decode(printed, validate=True)) == 32
    assert printed != ok(invoke("secrets", "new-key")).stdout.strip()
    add_deployment(invoke, slug("fam"))
    reports = json_out(invoke("secrets", "rotate", "--json"))
    assert {r["store"] for r in reports} == {"gateway_deployments", "gateway_provider_keys"}
    assert all(r["rotated"] == 0 and r["unreadable"] == 0 for r in reports)  # already current
    table = ok(invoke("secrets", "rotate"))
    assert "gateway_provider_keys" in table.stdout
