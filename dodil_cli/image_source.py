"""The image branch of ``app deploy`` (``CodeSource.image``).

``--dockerfile-path`` builds the ``--code`` folder's Dockerfile on the
platform (ImageFromCode: the folder is packed as the build context),
``--git-url`` builds a repository's (ImageFromGit), ``--image`` runs a
prebuilt image (PrebuiltImage). ``--health-path`` and ``--build-arg`` go with
any of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.appspec import parse_env
from dodil_cli.code import Upload, is_archive
from dodil_cli.errors import UsageError
from dodil_cli.packing import pack_directory
from dodil_cli.views import size


@dataclass(frozen=True)
class ImageOptions:
    """The image flags of ``app deploy``; ``given`` when any selects the branch."""

    dockerfile_path: str | None = None
    image: str | None = None
    git_url: str | None = None
    git_ref: str = ""
    git_context: str = ""
    git_secret: str = ""
    registry_secret: str = ""
    health_path: str = ""
    build_args: dict[str, str] = field(default_factory=dict)

    @property
    def given(self) -> bool:
        return bool(self.dockerfile_path or self.image or self.git_url)

    def check(self) -> None:
        chosen = [
            flag
            for flag, value in (
                ("--dockerfile-path", self.dockerfile_path),
                ("--image", self.image),
                ("--git-url", self.git_url),
            )
            if value
        ]
        if len(chosen) > 1:
            raise UsageError(f"{' and '.join(chosen)} cannot be combined: pick one image source")
        if self.registry_secret and not self.image:
            raise UsageError("--registry-secret goes with --image")
        if (self.git_ref or self.git_context or self.git_secret) and not self.git_url:
            raise UsageError("--git-ref, --git-context and --git-secret go with --git-url")
        if self.build_args and not self.dockerfile_path:
            raise UsageError("--build-arg goes with --dockerfile-path")


def image_options(func: Callable[..., object]) -> Callable[..., object]:
    """The image flags, collected into one ``image`` keyword argument."""
    options = [
        click.option(
            "--dockerfile-path",
            metavar="PATH",
            help="Build an image from the --code folder with this Dockerfile (relative to it).",
        ),
        click.option("--image", metavar="REF", help="Run a prebuilt image (registry/name:tag)."),
        click.option("--registry-secret", metavar="NAME", help="Secret for --image."),
        click.option("--git-url", metavar="URL", help="Build the Dockerfile of a git repository."),
        click.option("--git-ref", metavar="REF", help="Branch, tag or commit of --git-url."),
        click.option("--git-context", metavar="DIR", help="Context folder in the repo."),
        click.option("--git-secret", metavar="NAME", help="Secret with --git-url's credentials."),
        click.option(
            "--health-path", metavar="PATH", help="GET path the container answers once ready."
        ),
        click.option(
            "--build-arg", "build_args", multiple=True, metavar="K=V", help="Build argument."
        ),
    ]

    # wraps() also carries the options of the decorators below (click keeps
    # them on the function), so the command keeps every flag.
    @functools.wraps(func)
    def collect(*args: object, **kwargs: object) -> object:
        build_args = parse_env(tuple(kwargs.pop("build_args") or ()))  # type: ignore[arg-type]
        picked = {
            name: kwargs.pop(name)
            for name in (
                "dockerfile_path", "image", "registry_secret", "git_url", "git_ref",
                "git_context", "git_secret", "health_path",
            )
        }  # fmt: skip
        text = {k: str(v or "") for k, v in picked.items()}
        kwargs["image"] = ImageOptions(
            dockerfile_path=text["dockerfile_path"] or None,
            image=text["image"] or None,
            git_url=text["git_url"] or None,
            git_ref=text["git_ref"],
            git_context=text["git_context"],
            git_secret=text["git_secret"],
            registry_secret=text["registry_secret"],
            health_path=text["health_path"],
            build_args=build_args,
        )
        return func(*args, **kwargs)

    decorated: Callable[..., object] = collect
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


def image_upload(options: ImageOptions, path: Path) -> Upload:
    """The CodeSource of the chosen image branch."""
    image = compute.ImageSource(health_path=options.health_path)
    if options.image:
        image.prebuilt.CopyFrom(
            compute.PrebuiltImage(
                image_ref=options.image, registry_secret_ref=options.registry_secret
            )
        )
        summary = f"image {options.image}"
    elif options.git_url:
        image.from_git.CopyFrom(
            compute.ImageFromGit(
                repo_url=options.git_url,
                ref=options.git_ref,
                context_dir=options.git_context,
                git_secret_ref=options.git_secret,
            )
        )
        summary = f"git {options.git_url}" + (f" at {options.git_ref}" if options.git_ref else "")
    else:
        assert options.dockerfile_path is not None
        archive, summary = _build_context(path)
        image.from_code.CopyFrom(
            compute.ImageFromCode(
                archive=archive,
                dockerfile_path=options.dockerfile_path,
                build_args=options.build_args,
            )
        )
    return Upload(compute.CodeSource(image=image), summary)


def _build_context(path: Path) -> tuple[bytes, str]:
    """The --code folder (or archive) as the build context's archive."""
    if path.is_file():
        data = path.read_bytes()
        if not is_archive(data):
            raise UsageError(
                f"--dockerfile-path needs --code to be a folder or a .zip/.tar.gz, not {path}"
            )
        return data, f"build context {path.name}, {size(len(data))}"
    try:
        packed = pack_directory(path)
    except OSError as exc:
        raise UsageError(f"cannot pack {path}: {exc.strerror}: {exc.filename}") from None
    if not packed.files:
        raise UsageError(f"nothing to upload: {path} has no files (after ignore rules)")
    count = len(packed.files)
    return (
        packed.data,
        f"build context of {count} file{'s' if count != 1 else ''}, {size(len(packed.data))}",
    )
