"""Turns a version's stored code into a runnable artifact, once.

An artifact's digest is the sha256 of everything that decides the build's
output: the code hash, how the code was sent (the same bytes are a project
as an archive and one source file otherwise), the runtime spec, the build
arguments and the pipeline's revision. Builds are therefore cached for good
(a rollback or a re-publish of the same code reuses the artifact), and
concurrent requests for
the same digest (20 simultaneous publishes, a publish racing an invoke of
the draft) share one build through a per-digest lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from ignite_server.core.image_artifacts import ImageArtifacts, image_reference
from ignite_server.domain import archives
from ignite_server.domain.errors import FailedPrecondition
from ignite_server.domain.models import DeploymentMode, RuntimeKind, UploadKind, Version
from ignite_server.ports.blob_store import BlobStore
from ignite_server.ports.build_pipeline import BuildFailed, BuildPipeline, BuildRequest

log = structlog.get_logger(__name__)

#: Where a single uploaded source file goes in the build's source tree.
SOURCE_FILE_NAMES: dict[RuntimeKind, str] = {
    RuntimeKind.PYTHON: "handler.py",
    RuntimeKind.GO: "main.go",
    RuntimeKind.RUST: "src/lib.rs",
    RuntimeKind.DENO: "main.ts",
}
#: Bump to invalidate every cached artifact (a change in how builds lay out
#: their output).
BUILD_REVISION = "1"
#: The build log keeps this much of the end of a build's output.
BUILD_LOG_MAX_CHARS = 256 * 1024


@dataclass(frozen=True)
class BuildResult:
    digest: str
    ok: bool
    error: str
    log: str
    #: Image apps: the image the artifact runs, by digest.
    image_ref: str = ""


class Artifacts:
    """Builds versions into artifacts with the pipeline of their runtime."""

    def __init__(
        self,
        blobs: BlobStore,
        pipelines: Mapping[RuntimeKind, BuildPipeline],
        images: ImageArtifacts | None = None,
        images_unavailable: str = "no image builder is configured",
    ) -> None:
        self._blobs = blobs
        self._pipelines = dict(pipelines)
        self._images = images
        self._images_unavailable = images_unavailable
        self._locks: dict[str, asyncio.Lock] = {}

    def require_runnable(self, version: Version) -> None:
        """Image apps need the image tools; FAILED_PRECONDITION without them."""
        if version.deployment_mode == DeploymentMode.IMAGE and self._images is None:
            raise FailedPrecondition(
                f"image apps are not available on this platform: {self._images_unavailable}",
                reason="IMAGE_MODE_UNSUPPORTED",
                metadata={"app_id": f"{version.organization}/{version.app}"},
            )

    def pipeline(self, kind: RuntimeKind) -> BuildPipeline:
        try:
            return self._pipelines[kind]
        except KeyError:
            raise FailedPrecondition(
                f"the {kind} runtime is not available on this platform",
                reason="RUNTIME_UNAVAILABLE",
                metadata={"runtime": kind.value},
            ) from None

    def needs_explicit_compile(self, version: Version) -> bool:
        return version.runtime is not None and self.pipeline(version.runtime.kind).explicit_compile

    def digest(self, version: Version, resolved_image: str = "") -> str:
        """The artifact's digest; a prebuilt image's artifact also depends on
        the digest its reference resolved to (``resolved_image``)."""
        runtime = version.runtime
        spec = {
            "code": version.code_hash,
            "upload": version.upload_kind.value if version.upload_kind else "",
            "runtime": [runtime.kind.value, runtime.version, int(runtime.target), runtime.toolchain]
            if runtime
            else None,
            "args": dict(sorted(version.build_args.items())),
            "revision": BUILD_REVISION,
        }
        if version.image is not None:
            spec["image"] = version.image.to_json()
        if resolved_image:
            spec["resolved"] = resolved_image
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()

    @staticmethod
    def resolves_at_publish(version: Version) -> bool:
        """A prebuilt image names a tag that may move: its digest is looked up
        again at every publish."""
        return version.upload_kind == UploadKind.PREBUILT_IMAGE

    def artifact_path(self, digest: str) -> Path:
        return self._blobs.artifact_path(digest)

    def is_built(self, version: Version) -> bool:
        return self._blobs.has_artifact(self.digest(version))

    def is_current(self, version: Version) -> bool:
        """Whether ``version`` records the artifact its code builds today
        (a version whose inputs changed, or whose artifact is gone, is not)."""
        if self.resolves_at_publish(version):
            return bool(version.artifact_digest) and self._blobs.has_artifact(
                version.artifact_digest
            )
        return version.artifact_digest == self.digest(version) and self.is_built(version)

    async def build(self, version: Version) -> BuildResult:
        """Build ``version`` unless its artifact exists; never raises for the
        user's own build errors (they come back as ``ok=False``)."""
        self.require_runnable(version)
        pipeline: BuildPipeline | None = None
        if version.deployment_mode != DeploymentMode.IMAGE:
            if version.runtime is None:
                raise FailedPrecondition(
                    "this draft has no runtime to build with", reason="RUNTIME_REQUIRED"
                )
            pipeline = self.pipeline(version.runtime.kind)
        # Builds of the same inputs share one lock; a prebuilt image's
        # artifact digest is only known once its reference is resolved.
        inputs = digest = self.digest(version)
        lock = self._locks.setdefault(inputs, asyncio.Lock())
        async with lock:
            if self._blobs.has_artifact(digest) and not self.resolves_at_publish(version):
                image_ref = image_reference(self._blobs.artifact_path(digest))
                return BuildResult(digest, True, "", version.build_log, image_ref)
            lines: list[str] = []
            size = 0
            work = self._blobs.scratch("build-")
            relative = _path_remover(work / "src", work / "out", work)

            def sink(line: str) -> None:
                nonlocal size
                line = relative(line)
                lines.append(line)
                size += len(line) + 1
                while size > BUILD_LOG_MAX_CHARS and len(lines) > 1:
                    size -= len(lines.pop(0)) + 1

            try:
                out = work / "out"
                out.mkdir()
                log.info("build.start", app=f"{version.organization}/{version.app}", digest=digest)
                image_ref = ""
                try:
                    if pipeline is None:
                        assert self._images is not None
                        image = await self._images.make(version, work, out, sink)
                        image_ref = image.reference
                        digest = self.digest(
                            version, image.digest if self.resolves_at_publish(version) else ""
                        )
                        if self._blobs.has_artifact(digest):
                            return BuildResult(digest, True, "", "\n".join(lines), image_ref)
                    else:
                        await self._compile(version, pipeline, work, out, sink)
                except BuildFailed as failed:
                    log.info("build.failed", digest=digest, error=failed.message)
                    return BuildResult(digest, False, relative(failed.message), "\n".join(lines))
                await asyncio.to_thread(self._blobs.commit_artifact, digest, out)
                log.info("build.done", digest=digest)
                return BuildResult(digest, True, "", "\n".join(lines), image_ref)
            finally:
                self._locks.pop(inputs, None)
                await asyncio.to_thread(shutil.rmtree, work, True)

    async def _compile(
        self,
        version: Version,
        pipeline: BuildPipeline,
        work: Path,
        out: Path,
        sink: Callable[[str], None],
    ) -> None:
        """A managed runtime's build: the code as a source tree, then its pipeline."""
        assert version.runtime is not None
        source = work / "src"
        source.mkdir()
        await asyncio.to_thread(self._materialize, version, source)
        await pipeline.build(
            BuildRequest(
                runtime=version.runtime,
                source_dir=source,
                out_dir=out,
                organization=version.organization,
                log=sink,
                build_args=version.build_args,
            )
        )

    def _materialize(self, version: Version, dest: Path) -> None:
        """Write the version's code as a source tree under ``dest``."""
        data = self._blobs.read_code(version.code_hash)
        if version.upload_kind == UploadKind.ARCHIVE:
            archives.extract(data, dest)
            return
        assert version.runtime is not None
        target = dest / SOURCE_FILE_NAMES[version.runtime.kind]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _path_remover(*roots: Path) -> Callable[[str], str]:
    """A function that rewrites paths under ``roots`` (the build's scratch
    directories: where the code was unpacked, where the artifact is made)
    as paths relative to the app's code, so build logs and errors show
    ``main.ts:1:7`` and never the server's filesystem."""
    prefixes: list[str] = []
    for root in roots:
        for form in {str(root), str(root.resolve())}:
            prefixes += [f"file://{form}/", f"{form}/"]
    # Longest first: a subdirectory's prefix before its parent's.
    prefixes.sort(key=len, reverse=True)

    def rewrite(text: str) -> str:
        for prefix in prefixes:
            if prefix in text:
                text = text.replace(prefix, "")
        return text

    return rewrite
