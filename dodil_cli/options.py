"""Flags shared by many commands, declared once.

``common_options`` gives every leaf command the same ``-o``, ``--endpoint``,
``--plaintext``, ``--org``, ``--show-env`` and ``--verbose`` (they may follow the arguments,
as in ``dodil ignite app get acme-corp:greet -o json``). ``app_settings``
gives ``app create``, ``app update`` and ``app deploy`` the same settings
flags and turns them into an :class:`~dodil_cli.appspec.AppSpec`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dodil_cli.appinfo import read_schema_file
from dodil_cli.appspec import (
    RUNTIMES,
    SCALE_METRICS,
    STORAGE_MODES,
    TARGETS,
    TIERS,
    AppSpec,
    parse_env,
)
from dodil_cli.config import OUTPUT_FORMATS
from dodil_cli.errors import UsageError
from dodil_cli.rollout_spec import PublishSpec, parse_duration, parse_rollout
from dodil_cli.session import Session

F = TypeVar("F", bound=Callable[..., Any])

pass_session = click.make_pass_decorator(Session, ensure=True)


def _setter(attribute: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def store(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        # Flags at any level (root group or leaf command) land in the one
        # Session; a flag left at its default must not undo one given higher.
        if value not in (None, False):
            setattr(ctx.ensure_object(Session), attribute, value)

    return store


def common_options(func: F) -> F:
    """Add the flags every command accepts."""
    decorators = [
        click.option(
            "-o",
            "--output",
            type=click.Choice(OUTPUT_FORMATS),
            expose_value=False,
            callback=_setter("output_flag"),
            help="Output format (default from config, else table).",
        ),
        click.option(
            "--endpoint",
            metavar="HOST:PORT",
            expose_value=False,
            callback=_setter("endpoint_flag"),
            help="Ignite API endpoint (overrides api_endpoint).",
        ),
        click.option(
            "--plaintext",
            is_flag=True,
            expose_value=False,
            callback=_setter("plaintext_flag"),
            help="Connect without TLS (automatic for loopback endpoints).",
        ),
        click.option(
            "--org",
            metavar="ORG",
            expose_value=False,
            callback=_setter("org_flag"),
            help="Organization for ids without 'org:' (overrides organization).",
        ),
        click.option(
            "--show-env",
            is_flag=True,
            expose_value=False,
            callback=_setter("show_env"),
            help="Show app env values (hidden by default: they are often secrets).",
        ),
        click.option(
            "-v",
            "--verbose",
            is_flag=True,
            expose_value=False,
            callback=_setter("verbose"),
            help="Show error details.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def publish_options(func: F) -> F:
    """Add the flags of a publish; the command receives ``publish: PublishSpec``."""
    decorators = [
        click.option(
            "--force",
            is_flag=True,
            help="Publish a new version even when code and settings are unchanged.",
        ),
        click.option("-m", "--message", default="", help="A note kept with the version."),
        click.option(
            "--rollout",
            metavar="canary:P1,P2,...",
            help="Move traffic in steps (e.g. canary:10,50,100), rolling back by itself.",
        ),
        click.option(
            "--step",
            metavar="DURATION",
            help="How long each rollout step lasts before it is judged (default 60s).",
        ),
        click.option(
            "--max-error-increase",
            type=click.IntRange(0, 100),
            default=0,
            help="Roll back above the old version's error rate + this many points (default 5).",
        ),
        click.option(
            "--max-p95-increase",
            type=click.IntRange(0),
            default=0,
            help="Roll back above the old version's p95 + this percent (default 50).",
        ),
        click.option(
            "--min-requests",
            type=click.IntRange(0),
            default=0,
            help="Requests a step needs to be judged (default 10).",
        ),
        click.option(
            "--wait", is_flag=True, help="Follow the rollout until it ends; fail if it rolls back."
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        rollout = kwargs.pop("rollout")
        step = kwargs.pop("step")
        wait = kwargs.pop("wait")
        if rollout is None and (step or wait):
            raise UsageError("--step and --wait go with --rollout")
        kwargs["publish"] = PublishSpec(
            force=kwargs.pop("force"),
            message=kwargs.pop("message"),
            rollout=parse_rollout(rollout) if rollout else None,
            step_secs=parse_duration(step) if step else 0,
            max_error_increase=kwargs.pop("max_error_increase"),
            max_p95_increase=kwargs.pop("max_p95_increase"),
            min_requests=kwargs.pop("min_requests"),
            wait=wait,
        )
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def app_settings(*, create: bool, unset_env: bool | None = None) -> Callable[[F], F]:
    """Add the app-settings flags; the command receives ``spec: AppSpec``.

    With ``create`` the flags describe a new app; otherwise (update) they
    change only what is given. ``--unset-env`` is there for updates, and
    wherever ``unset_env`` says so (``deploy``, which may also update).
    """
    with_unset = (not create) if unset_env is None else unset_env

    def decorate(func: F) -> F:
        opts: list[Callable[[F], F]] = [
            click.option("--runtime", type=click.Choice(RUNTIMES), help="Language runtime."),
            click.option(
                "--rust-target",
                "--target",
                "target",
                type=click.Choice(TARGETS),
                help="Compile target for rust and go (default native).",
            ),
            click.option(
                "--runtime-version", metavar="V", help="Interpreter version or toolchain."
            ),
            click.option("--tier", type=click.Choice(TIERS), help="Resource tier (default small)."),
            click.option(
                "--env",
                "env_pairs",
                multiple=True,
                metavar="K=V",
                help="Environment variable (repeatable).",
            ),
            click.option("--description", help="Description (also the MCP tool description)."),
            click.option(
                "--input-schema",
                type=click.Path(dir_okay=False, path_type=Path),
                help="JSON Schema file of the payload.",
            ),
            click.option(
                "--output-schema",
                type=click.Path(dir_okay=False, path_type=Path),
                help="JSON Schema file of the result.",
            ),
            click.option("--mcp/--no-mcp", "mcp", default=None, help="Export as an MCP tool."),
            click.option(
                "--max-concurrency", type=click.IntRange(0), help="Concurrent executions per pod."
            ),
            click.option(
                "--memory-mb",
                type=click.IntRange(0),
                help="Memory per pod, overriding the tier (0: the tier's again).",
            ),
            click.option(
                "--cpu-millicores",
                type=click.IntRange(0),
                help="CPU per pod, 1000 = a core (0: the tier's again).",
            ),
            click.option(
                "--timeout-secs",
                type=click.IntRange(0),
                help="Time limit of one invocation (0: the default again).",
            ),
            click.option("--max-replicas", type=click.IntRange(0), help="Most pods at once."),
            click.option("--reserved-capacity", type=click.IntRange(0), help="Pods kept warm."),
            click.option("--scale-threshold", type=click.IntRange(0), help="Target load per pod."),
            click.option(
                "--scale-metric",
                type=click.Choice(SCALE_METRICS),
                help="What the threshold measures.",
            ),
            click.option(
                "--scaledown-period-secs",
                type=click.IntRange(0),
                help="Idle seconds before scaling down.",
            ),
            click.option(
                "--storage-mode", type=click.Choice(STORAGE_MODES), help="Execution retention."
            ),
            click.option("--ttl-seconds", type=click.IntRange(0), help="With --storage-mode ttl."),
            click.option(
                "--allow-unauthenticated/--no-allow-unauthenticated",
                # A second name for "off", kept because it reads better in
                # scripts that lock an app down again.
                " /--require-auth",
                "allow_unauthenticated",
                default=None,
                help="Let callers without a token invoke the active version.",
            ),
        ]
        if with_unset:
            opts.append(
                click.option("--unset-env", multiple=True, metavar="K", help="Remove a variable.")
            )
        for option in reversed(opts):
            func = option(func)
        return _collect_spec(func)

    return decorate


_SPEC_PARAMS = [
    "runtime",
    "target",
    "runtime_version",
    "tier",
    "env_pairs",
    "description",
    "input_schema",
    "output_schema",
    "mcp",
    "max_concurrency",
    "memory_mb",
    "cpu_millicores",
    "timeout_secs",
    "max_replicas",
    "reserved_capacity",
    "scale_threshold",
    "scale_metric",
    "scaledown_period_secs",
    "storage_mode",
    "ttl_seconds",
    "allow_unauthenticated",
    "unset_env",
]


def _collect_spec(func: F) -> F:
    # Replaces the separate flag arguments with one `spec`; update_wrapper
    # carries click's collected parameters (__click_params__) across.
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name, None) for name in _SPEC_PARAMS}
        kwargs["spec"] = spec_from_flags(given)
        return func(*args, **kwargs)

    return functools.update_wrapper(wrapper, func)  # type: ignore[return-value]


def spec_from_flags(given: dict[str, Any]) -> AppSpec:
    """An AppSpec from the parsed app-settings flags."""
    input_schema = given["input_schema"]
    output_schema = given["output_schema"]
    return AppSpec(
        runtime=given["runtime"],
        target=given["target"],
        runtime_version=given["runtime_version"],
        tier=given["tier"],
        env=parse_env(given["env_pairs"]) if given["env_pairs"] else None,
        unset_env=tuple(given["unset_env"] or ()),
        description=given["description"],
        input_schema=read_schema_file(input_schema, "--input-schema") if input_schema else None,
        output_schema=read_schema_file(output_schema, "--output-schema") if output_schema else None,
        mcp_enabled=given["mcp"],
        max_concurrency=given["max_concurrency"],
        memory_mb=given["memory_mb"],
        cpu_millicores=given["cpu_millicores"],
        timeout_secs=given["timeout_secs"],
        max_replicas=given["max_replicas"],
        reserved_capacity=given["reserved_capacity"],
        scale_threshold=given["scale_threshold"],
        scale_metric=given["scale_metric"],
        scaledown_period_secs=given["scaledown_period_secs"],
        storage_mode=given["storage_mode"],
        ttl_seconds=given["ttl_seconds"],
        allow_unauthenticated=given["allow_unauthenticated"],
    )
