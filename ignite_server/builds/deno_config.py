"""How the Deno pipeline prepares a project before Deno runs on it.

1. The project is copied into the artifact directory, and the bundled SDK
   (runtimes/deno/ignite) into ``.ignite/sdk`` inside it;
2. the import map (``imports`` in deno.json, or the file its ``importMap``
   names) is rewritten so ``"ignite"`` resolves to that copy, whatever path
   the project mapped it to; ``nodeModulesDir: "auto"`` and ``vendor: true``
   make npm packages and remote modules land inside the artifact;
3. a ``deno.jsonc`` (JSON with comments and trailing commas) becomes a plain
   ``deno.json``;
4. the entry module is the one the build arg ``entrypoint`` names, else the
   first of ENTRY_CANDIDATES present.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ignite_server.builds.launch_manifest import copy_sources
from ignite_server.ports.build_pipeline import BuildFailed

#: The bundled SDK, imported by apps as ``"ignite"``.
SDK_DIR = Path(__file__).resolve().parents[2] / "runtimes" / "deno" / "ignite"
#: Where the SDK is placed inside the artifact.
SDK_IN_ARTIFACT = ".ignite/sdk"
SDK_SPECIFIER = "ignite"
#: Entry modules tried in order when the build args name none.
ENTRY_CANDIDATES = ("main.ts", "main.tsx", "main.js", "main.mjs", "mod.ts", "index.ts", "index.js")


def prepare_project(source: Path, out: Path, build_args: Mapping[str, str]) -> str:
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
