"""The Rust pipeline's wasm target (``--rust-target wasm``), ``wasm32-wasip2``.

The SDK then compiles to a WASI command that answers one invocation
envelope, tokio is not injected (it does not build for WASI with the usual
features), and the artifact is ``app.wasm`` plus a launch manifest that
starts the Wasmtime host (runtimes/wasm/ignite_wasm_host.py, on the Python
interpreter the Python runtime uses, with the ``wasmtime`` package mounted
read-only). After Cargo, the component is precompiled to ``app.cwasm`` with
that Wasmtime, so a cold start loads native code instead of compiling.

Where the toolchain lacks the wasm32-wasip2 target or the server lacks the
``wasmtime`` package, the build fails before anything runs with
FAILED_PRECONDITION / WASM_TARGET_UNAVAILABLE.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from ignite_server.builds.jail import OUT, BuildJail
from ignite_server.builds.launch_manifest import CODE_PLACEHOLDER, write_launch_manifest
from ignite_server.builds.toolchain_pipeline import ToolchainPipeline
from ignite_server.domain.errors import FailedPrecondition

WASM_TARGET = "wasm32-wasip2"
#: The wasm component's name inside the artifact.
WASM_BINARY = "app.wasm"
#: The Wasmtime host that serves wasm apps over the pod protocol.
WASM_HOST = Path(__file__).resolve().parents[2] / "runtimes" / "wasm" / "ignite_wasm_host.py"


@dataclass(frozen=True)
class WasmTarget:
    """Builds a WebAssembly component and runs it under the Wasmtime host.

    ``steps`` is the Rust pipeline (its memory limit applies to the
    precompile step); ``interpreter`` runs the host; ``wasmtime_dir`` is the
    ``wasmtime`` package's directory.
    """

    triple = WASM_TARGET
    artifact = WASM_BINARY
    wasm = True

    steps: ToolchainPipeline
    interpreter: Path
    wasmtime_dir: Path

    @classmethod
    def on_this_host(
        cls, steps: ToolchainPipeline, *, sysroot: Path, wasmtime: str, interpreter: Path
    ) -> WasmTarget:
        """The target, once this host is known to build and run wasm apps:
        ``sysroot`` (a toolchain directory) has the wasm32-wasip2 standard
        library and the Python package ``wasmtime`` is installed;
        FailedPrecondition saying what is missing otherwise."""
        missing = []
        if not (sysroot / "lib" / "rustlib" / WASM_TARGET).is_dir():
            missing.append(f"the {WASM_TARGET} Rust target (rustup target add {WASM_TARGET})")
        wasmtime_dir = _package_dir(wasmtime)
        if wasmtime_dir is None:
            missing.append(f"the {wasmtime!r} Python package (Wasmtime), which runs wasm apps")
        if missing or wasmtime_dir is None:
            raise FailedPrecondition(
                f"--rust-target wasm ({WASM_TARGET}) is not available: this host lacks "
                + " and ".join(missing),
                reason="WASM_TARGET_UNAVAILABLE",
                metadata={"target": WASM_TARGET},
            )
        return cls(steps, interpreter, wasmtime_dir)

    async def finish_in(self, jail: BuildJail) -> None:
        """Compiles app.wasm to app.cwasm with the Wasmtime pods run (the
        host falls back to compiling when the file does not fit its
        Wasmtime). Only Wasmtime's compiler runs here, in the build's jail
        like the Cargo step."""
        wasm = f"{OUT}/{WASM_BINARY}"
        argv = [
            str(self.interpreter), "-S", "-B", str(WASM_HOST),
            "--precompile", wasm, wasm.removesuffix(".wasm") + ".cwasm",
        ]  # fmt: skip
        jail.log("$ precompile app.wasm for Wasmtime")
        await jail.run(
            "precompiling app.wasm",
            argv,
            env=jail.env(**self._host_env()),
            cwd=OUT,
            ro_paths=self._host_ro_paths(),
            memory_mb=self.steps.memory_mb,
        )

    def write_manifest(self, out_dir: Path) -> None:
        """The launch manifest that starts the Wasmtime host on the component."""
        host = [str(self.interpreter), "-S", "-B", str(WASM_HOST)]
        write_launch_manifest(
            out_dir,
            [*host, f"{CODE_PLACEHOLDER}/{WASM_BINARY}"],
            ro_paths=self._host_ro_paths(),
            env=self._host_env(),
        )

    def _host_ro_paths(self) -> list[str]:
        """What the Wasmtime host needs mounted: the interpreter's prefix
        (unless it is part of the base system), the host's directory and
        only the ``wasmtime`` package of the server's site-packages."""
        ro_paths = [str(WASM_HOST.parent), str(self.wasmtime_dir)]
        prefix = Path(sys.base_prefix).resolve()
        if not str(prefix).startswith("/usr"):
            ro_paths.insert(0, str(prefix))
        return ro_paths

    def _host_env(self) -> dict[str, str]:
        """The Wasmtime host's own variables: ``wasmtime`` importable (the
        host runs without ``-I``, which would ignore PYTHONPATH)."""
        return {"PYTHONPATH": str(self.wasmtime_dir.parent), "PYTHONUNBUFFERED": "1"}


def _package_dir(name: str) -> Path | None:
    """The directory of the installed Python package ``name``, if any."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()
