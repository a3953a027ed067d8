"""The Deno build pipeline: a TypeScript/JavaScript project → a directory
Deno runs offline.

The user's archive holds an entry module (``main.ts`` by default) that calls
``start(handle)`` from ``"ignite"``, and optionally a ``deno.json`` (or
``deno.jsonc``). A build:

1. copies the project into the artifact directory, and the bundled SDK
   (runtimes/deno/ignite) into ``.ignite/sdk`` inside it;
2. rewrites the import map (``imports`` in deno.json, or the file its
   ``importMap`` names) so ``"ignite"`` resolves to that copy, whatever path
   the project mapped it to; sets ``nodeModulesDir: "auto"`` and
   ``vendor: true`` so npm packages and remote modules land inside the
   artifact;
3. ``deno install --entrypoint <entry>`` resolves and downloads every
   dependency (the download cache, DENO_DIR, is shared under ``cache_dir``,
   so a rebuild fetches nothing it has seen before);
4. ``deno check`` type-checks the entry module: a type or syntax error fails
   the build with Deno's message (build arg ``check=false`` skips it).

Pods run ``deno run --cached-only``: everything they import is inside the
artifact, so they need no network and no shared cache. The ``deno`` binary
is mounted read-only from the host.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path, PurePosixPath
from typing import Any

from ignite_server.builds.launch_manifest import (
    CODE_PLACEHOLDER,
    copy_sources,
    write_launch_manifest,
)
from ignite_server.builds.subprocess_build import (
    DEFAULT_MEMORY_MB,
    Deadline,
    Sandbox,
    failure_reason,
    installed_tool,
    network_env,
    require_tool,
    run_step,
)
from ignite_server.domain.models import RuntimeKind
from ignite_server.ports.build_pipeline import BuildFailed, BuildRequest

#: The bundled SDK, imported by apps as ``"ignite"``.
SDK_DIR = Path(__file__).resolve().parents[2] / "runtimes" / "deno" / "ignite"
#: Where the SDK is placed inside the artifact.
SDK_IN_ARTIFACT = ".ignite/sdk"
SDK_SPECIFIER = "ignite"
#: Entry modules tried in order when the build args name none.
ENTRY_CANDIDATES = ("main.ts", "main.tsx", "main.js", "main.mjs", "mod.ts", "index.ts", "index.js")
#: The pod's Deno cache (compiled-module cache only; dependencies are in the
#: artifact). Under the sandbox's private /tmp, so pods share nothing.
POD_DENO_DIR = "/tmp/deno-dir"


def default_deno() -> Path:
    """deno on PATH, else the one installed beside the server's interpreter
    (the ``deno`` package from PyPI)."""
    found = shutil.which("deno")
    if found:
        return Path(found)
    return Path(sys.executable).parent / "deno"


class DenoPipeline:
    """Builds Deno apps.

    ``deno`` is the Deno binary builds and pods use (default: on PATH, else
    beside the server's Python; FileNotFoundError when there is none);
    ``memory_mb`` limits each build step;
    ``sandbox`` runs the steps under bubblewrap when installed.
    """

    kind = RuntimeKind.DENO
    explicit_compile = False

    def __init__(
        self,
        deno: Path | None = None,
        *,
        memory_mb: int = DEFAULT_MEMORY_MB,
        sandbox: bool = True,
    ) -> None:
        self.deno = installed_tool((deno or default_deno()).resolve(), "Deno")
        self.memory_mb = memory_mb
        self.sandbox = sandbox

    async def build(self, request: BuildRequest) -> None:
        """Prepares ``request.out_dir`` so ``deno run --cached-only`` can run it."""
        require_tool(self.deno, "Deno")
        deadline = Deadline(request.timeout_secs)
        out = request.out_dir
        entry = await asyncio.to_thread(_prepare, request.source_dir, out, request.build_args)
        deno_dir = request.cache_dir / "deno-dir"
        home = request.cache_dir / "home"
        for path in (deno_dir, home):
            path.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": f"{self.deno.parent}:/usr/bin:/bin",
            "HOME": str(home),
            "DENO_DIR": str(deno_dir),
            "DENO_NO_UPDATE_CHECK": "1",
            "NO_COLOR": "1",
            # Trust the host's CA certificates too (a registry mirror or a
            # TLS-inspecting proxy), not only Deno's bundled roots.
            "DENO_TLS_CA_STORE": "mozilla,system",
            **network_env(),
        }
        for name in ("NPM_CONFIG_REGISTRY", "DENO_AUTH_TOKENS"):
            if name in os.environ:
                env[name] = os.environ[name]
        sandbox = (
            Sandbox(ro_paths=[self.deno.parent], rw_paths=[out, deno_dir, home])
            if self.sandbox
            else None
        )
        deno = str(self.deno)
        steps = [("deno install", [deno, "install", "--entrypoint", entry])]
        if request.build_args.get("check", "true").lower() != "false":
            steps.append(("deno check", [deno, "check", entry]))
        for name, argv in steps:
            request.log(f"$ deno {' '.join(argv[1:])}")
            result = await run_step(
                argv,
                cwd=out,
                env=env,
                log=request.log,
                deadline=deadline,
                memory_mb=self.memory_mb,
                sandbox=sandbox,
            )
            if result.returncode != 0:
                raise BuildFailed(failure_reason(name, result, self.memory_mb))
        argv = [
            deno, "run",
            "--cached-only", "--no-prompt", "--allow-all",
            "--config", f"{CODE_PLACEHOLDER}/deno.json",
            f"{CODE_PLACEHOLDER}/{entry}",
        ]  # fmt: skip
        write_launch_manifest(
            out,
            argv,
            ro_paths=[str(self.deno.parent)],
            env={"DENO_DIR": POD_DENO_DIR, "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"},
        )


def _prepare(source: Path, out: Path, build_args: Any) -> str:
    """Copies project and SDK into ``out``, rewrites the configuration, and
    returns the entry module's path relative to ``out``."""
    copy_sources(source, out)
    sdk = out / SDK_IN_ARTIFACT
    shutil.rmtree(sdk, ignore_errors=True)
    sdk.mkdir(parents=True)
    for module in SDK_DIR.glob("*.ts"):
        shutil.copy(module, sdk / module.name)
    entry = _entry_module(out, build_args.get("entrypoint", ""))
    config = _read_config(out)
    config["nodeModulesDir"] = "auto"
    config["vendor"] = True
    import_map_name = config.get("importMap")
    if isinstance(import_map_name, str):
        import_map_path = _inside(out, import_map_name, "importMap")
        try:
            import_map = json.loads(import_map_path.read_text())
        except (OSError, ValueError) as error:
            raise BuildFailed(f"cannot read the import map {import_map_name}: {error}") from None
        _map_sdk(import_map, import_map_path.parent, out)
        import_map_path.write_text(json.dumps(import_map, indent=2) + "\n")
    else:
        _map_sdk(config, out, out)
    (out / "deno.json").write_text(json.dumps(config, indent=2) + "\n")
    return entry


def _entry_module(out: Path, named: str) -> str:
    if named:
        _inside(out, named, "entrypoint")
        if not (out / named).is_file():
            raise BuildFailed(f"the entry module {named} is not in the archive")
        return str(PurePosixPath(named))
    for candidate in ENTRY_CANDIDATES:
        if (out / candidate).is_file():
            return candidate
    raise BuildFailed(
        f"no entry module: add one of {', '.join(ENTRY_CANDIDATES)} "
        "or name it with the build arg entrypoint"
    )


def _read_config(out: Path) -> dict[str, Any]:
    """deno.json, else deno.jsonc (which becomes deno.json), else {}."""
    for name in ("deno.json", "deno.jsonc"):
        path = out / name
        if path.is_file():
            try:
                config = json.loads(_strip_jsonc(path.read_text()))
            except ValueError as error:
                raise BuildFailed(f"{name} is not valid JSON: {error}") from None
            if not isinstance(config, dict):
                raise BuildFailed(f"{name} must hold a JSON object")
            if name == "deno.jsonc":
                path.unlink()
            return config
    return {}


def _map_sdk(import_map: dict[str, Any], base: Path, out: Path) -> None:
    """Points ``"ignite"`` in the import map at the SDK copy (a path relative
    to the file holding the map, as Deno resolves it)."""
    imports = import_map.setdefault("imports", {})
    if not isinstance(imports, dict):
        raise BuildFailed('"imports" in the import map must be an object')
    relative = os.path.relpath(out / SDK_IN_ARTIFACT / "mod.ts", base)
    imports[SDK_SPECIFIER] = relative if relative.startswith("../") else f"./{relative}"


def _inside(out: Path, name: str, what: str) -> Path:
    path = (out / name).resolve()
    if not path.is_relative_to(out.resolve()):
        raise BuildFailed(f"{what} {name!r} points outside the archive")
    return path


def _strip_jsonc(text: str) -> str:
    """JSON with comments and trailing commas (deno.jsonc) → JSON."""
    result: list[str] = []
    i, in_string = 0, False
    while i < len(text):
        char = text[i]
        if in_string:
            result.append(char)
            if char == "\\" and i + 1 < len(text):
                result.append(text[i + 1])
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            result.append(char)
        elif text.startswith("//", i):
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
            continue
        else:
            result.append(char)
        i += 1
    stripped = "".join(result)
    # A trailing comma before } or ] (allowed in JSONC, not in JSON).
    return _remove_trailing_commas(stripped)


def _remove_trailing_commas(text: str) -> str:
    result: list[str] = []
    in_string = False
    escaped = False
    for index, char in enumerate(text):
        if in_string:
            in_string = not (char == '"' and not escaped)
            escaped = char == "\\" and not escaped
        elif char == '"':
            in_string = True
        elif char == ",":
            following = text[index + 1 :].lstrip()
            if following[:1] in ("}", "]"):
                continue
        result.append(char)
    return "".join(result)
