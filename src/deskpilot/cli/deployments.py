"""``deskpilot deployments``: the gateway's stored deployments (those of the deployments file
are changed in the file)."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from deskpilot.cli._common import CliError, JsonOpt, admin, reports_errors, run
from deskpilot.cli._output import emit_json, note, table
from deskpilot.gateway import DeploymentView

app = typer.Typer(
    help="List, add and remove the gateway's stored deployments.", no_args_is_help=True
)

PriceOpt = Annotated[
    str | None, typer.Option(help="USD per million tokens, e.g. 2.50.", show_default=False)
]


def env_value(variable: str, what: str) -> str:
    """A credential read from the environment, so it stays out of shell history and ``ps``."""
    value = os.environ.get(variable, "")
    if not value:
        raise CliError(f"the environment variable {variable} (for {what}) is unset or empty")
    return value


def _headers(pairs: list[str]) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    for pair in pairs:
        name, sep, variable = pair.partition("=")
        if not sep or not name.strip() or not variable.strip():
            raise CliError(
                f"--header-env takes NAME=VARIABLE, e.g. OpenAI-Organization=ORG_ID; "
                f"got {name.strip() or pair!r}"
            )
        headers[name.strip()] = env_value(variable.strip(), f"header {name.strip()}")
    return headers or None


def _price(input_: str | None, cached: str | None, output: str | None) -> dict[str, Any] | None:
    if input_ is None and cached is None and output is None:
        return None
    if input_ is None or output is None:
        raise CliError(
            "give both --input-price and --output-price (and --cached-input-price "
            "if cache reads cost less)"
        )
    return {"input": input_, "cached_input": cached, "output": output}


def _price_text(view: DeploymentView) -> str:
    price = view.price
    if price is None:
        return "-"
    return f"{price.input}/{price.output}"


@app.command("list")
@reports_errors
def list_(as_json: JsonOpt = False) -> None:
    """List the stored deployments (never their keys). The deployments file's are listed by
    GET /admin/deployments on a running server."""
    views = run(lambda p: admin(p).deployments.list())
    if as_json:
        emit_json(views)
        return
    if not views:
        typer.echo("no stored deployments")
        note(
            "add one: deskpilot deployments add --alias gpt-4o --model gpt-4o "
            "--api-base https://api.openai.com/v1 --api-key-env OPENAI_API_KEY"
        )
        return
    typer.echo(
        table(
            ["NAME", "ALIAS", "PROVIDER", "MODEL", "API BASE", "KEY", "PRICE IN/OUT PER M"],
            [
                (
                    v.name,
                    v.alias,
                    v.provider,
                    v.model,
                    v.api_base,
                    ("set" if v.has_api_key else "-") + ("" if v.secrets_readable else " (!)"),
                    _price_text(v),
                )
                for v in views
            ],
        )
    )


@app.command("add")
@reports_errors
def add(
    alias: Annotated[str, typer.Option(help="The model name clients ask for.")],
    model: Annotated[str, typer.Option(help="The provider's own model name.")],
    api_base: Annotated[str, typer.Option(help="e.g. https://api.openai.com/v1")],
    provider: Annotated[str, typer.Option(help="openai (OpenAI-compatible) or anthropic.")] = (
        "openai"
    ),
    name: Annotated[
        str | None, typer.Option(help="Unique name (default: ALIAS#n).", show_default=False)
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            help="Read the API key from this environment variable (never pass a key "
            "as an argument).",
            show_default=False,
        ),
    ] = None,
    key_family: Annotated[
        str | None,
        typer.Option(
            help="Key family tenants' own keys replace (default: the provider).", show_default=False
        ),
    ] = None,
    header_env: Annotated[
        list[str] | None,
        typer.Option(
            help="Extra header NAME=VARIABLE, its value read from the environment; repeatable.",
            show_default=False,
        ),
    ] = None,
    read_timeout: Annotated[float | None, typer.Option(show_default=False)] = None,
    connect_timeout: Annotated[float | None, typer.Option(show_default=False)] = None,
    max_retries: Annotated[int | None, typer.Option(show_default=False)] = None,
    rpm: Annotated[
        int | None,
        typer.Option(help="The deployment's own requests per minute.", show_default=False),
    ] = None,
    tpm: Annotated[
        int | None, typer.Option(help="The deployment's own tokens per minute.", show_default=False)
    ] = None,
    input_price: PriceOpt = None,
    cached_input_price: PriceOpt = None,
    output_price: PriceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store a deployment (its key and header values encrypted). Running servers pick it up
    within a second."""
    body: dict[str, Any] = {
        "alias": alias,
        "name": name,
        "provider": provider,
        "model": model,
        "api_base": api_base,
        "api_key": None if api_key_env is None else env_value(api_key_env, "the API key"),
        "key_family": key_family,
        "read_timeout": read_timeout,
        "connect_timeout": connect_timeout,
        "max_retries": max_retries,
        "rpm": rpm,
        "tpm": tpm,
        "extra_headers": _headers(header_env or []),
        "price": _price(input_price, cached_input_price, output_price),
    }
    view = run(
        lambda p: admin(p).deployments.create({k: v for k, v in body.items() if v is not None})
    )
    if as_json:
        emit_json(view)
        return
    key = "with an API key" if view.has_api_key else "without an API key"
    typer.echo(
        f"added deployment {view.name} (alias {view.alias}, {view.provider}/{view.model}, {key})"
    )


@app.command("remove")
@reports_errors
def remove(name: Annotated[str, typer.Argument(help="The deployment's name.")]) -> None:
    """Remove a stored deployment; running servers stop using it within a second."""
    run(lambda p: admin(p).deployments.delete(name))
    typer.echo(f"removed deployment {name}")
