"""Build and cold-start times of the compiled runtimes (Go, Rust, Deno).

For each runtime's example app (runtimes/<lang>/examples/hello) this builds
once with an empty cache ("cold": an organization's first build), edits the
handler's source and builds again with the same dependencies ("rebuild":
the organization's cache), in build jails as the server runs them, then
starts the artifact as its launch manifest says and measures exec → first
answered request over the unix socket (unsandboxed; the pod sandbox adds its
own cost).

    .venv/bin/python bench/builds.py [--runs N] [--only go,rust,deno]

Prints a Markdown table and writes bench/results/builds.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ignite_server.builds.deno import DenoPipeline  # noqa: E402
from ignite_server.builds.go import GoPipeline  # noqa: E402
from ignite_server.builds.jail import BuildSpace  # noqa: E402
from ignite_server.builds.rust import RustPipeline  # noqa: E402
from ignite_server.domain.models import RuntimeKind, RuntimeSpec  # noqa: E402
from ignite_server.ports.build_pipeline import BuildPipeline, BuildRequest  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "builds.json"


@dataclass(frozen=True)
class Case:
    """One runtime's example and the one-line edit made before the rebuild."""

    kind: RuntimeKind
    pipeline: Callable[[BuildSpace], BuildPipeline]
    edited_file: str
    edit: tuple[str, str]
    payload: bytes


CASES = {
    "go": Case(
        RuntimeKind.GO, GoPipeline, "main.go", ('"Hello, "', '"Hi, "'), b'{"name": "bench"}'
    ),
    "rust": Case(
        RuntimeKind.RUST,
        RustPipeline,
        "src/lib.rs",
        ("Hello from Rust!", "Hi from Rust!"),
        b'{"message": "bench"}',
    ),
    "deno": Case(
        RuntimeKind.DENO,
        DenoPipeline,
        "main.ts",
        ("`Hello, ${name}!`", "`Hi, ${name}!`"),
        b'{"name": "bench"}',
    ),
}


@dataclass
class Result:
    runtime: str
    cold_build_secs: float
    rebuild_secs: float
    speedup: float
    artifact_mb: float
    first_response_ms_median: float
    first_response_ms_runs: list[float]


async def build(case: Case, space: BuildSpace, source: Path, out: Path) -> float:
    await asyncio.to_thread(out.mkdir, parents=True)
    request = BuildRequest(
        runtime=RuntimeSpec(kind=case.kind),
        source_dir=source,
        out_dir=out,
        organization=f"bench-{case.kind.value}",
        log=lambda line: None,
    )
    started = time.perf_counter()
    await case.pipeline(space).build(request)
    return time.perf_counter() - started


async def first_response_ms(artifact: Path, payload: bytes) -> float:
    """Exec → first 200 from the handler, polling the socket as a backend does."""
    manifest = json.loads((artifact / "ignite-launch.json").read_text())
    argv = [arg.replace("{code}", str(artifact)) for arg in manifest["argv"]]
    with tempfile.TemporaryDirectory(prefix="ignite-bench-") as run_dir:
        env = {
            "PATH": "/usr/bin:/bin",
            "IGNITE_SOCKET": f"{run_dir}/pod.sock",
            "IGNITE_CODE_DIR": str(artifact),
            "IGNITE_FUNCTION_ID": "bench/hello",
            "IGNITE_ORGANIZATION_ID": "bench",
            **{
                key: value.replace("/tmp/", f"{run_dir}/", 1)
                for key, value in manifest["env"].items()
            },
        }
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        connector = aiohttp.UnixConnector(path=f"{run_dir}/pod.sock")
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                while True:
                    try:
                        async with session.post("http://pod/", data=payload) as response:
                            if response.status == 200:
                                await response.read()
                                return (time.perf_counter() - started) * 1000
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.001)
        finally:
            process.terminate()
            await process.wait()


async def measure(name: str, case: Case, runs: int) -> Result:
    example = ROOT / "runtimes" / name / "examples" / "hello"
    with tempfile.TemporaryDirectory(prefix=f"ignite-bench-{name}-") as scratch:
        root = Path(scratch)
        source = root / "src"
        await asyncio.to_thread(shutil.copytree, example, source)
        with BuildSpace.reserved(root / "state") as space:
            cold = await build(case, space, source, root / "cold")
            await asyncio.to_thread(_edit, source / case.edited_file, *case.edit)
            rebuild = await build(case, space, source, root / "rebuild")
        artifact = root / "rebuild"
        size = await asyncio.to_thread(_tree_size, artifact)
        starts = [await first_response_ms(artifact, case.payload) for _ in range(runs)]
    return Result(
        runtime=name,
        cold_build_secs=round(cold, 2),
        rebuild_secs=round(rebuild, 2),
        speedup=round(cold / rebuild, 1),
        artifact_mb=round(size / 1e6, 1),
        first_response_ms_median=round(statistics.median(starts), 1),
        first_response_ms_runs=[round(ms, 1) for ms in starts],
    )


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} no longer contains {old!r}"
    path.write_text(text.replace(old, new))


def _tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _write_results(results: list[Result]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform()}
    RESULTS.write_text(
        json.dumps({"machine": machine, "results": [asdict(r) for r in results]}, indent=2) + "\n"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="cold starts per runtime")
    parser.add_argument("--only", default="go,rust,deno", help="comma-separated runtimes")
    args = parser.parse_args()
    results = [await measure(name, CASES[name], args.runs) for name in args.only.split(",")]
    print("| runtime | cold build | rebuild | speed-up | artifact | exec to first response |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.runtime} | {r.cold_build_secs:.1f} s | {r.rebuild_secs:.2f} s | "
            f"{r.speedup:g}x | {r.artifact_mb:g} MB | {r.first_response_ms_median:.0f} ms |"
        )
    await asyncio.to_thread(_write_results, results)
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
