"""Checking out a repository at a branch, a tag or a commit, in a build's
jail, through its egress proxy; refs and URLs that lead nowhere fail in one
line, and the clone is the build's, never the server's."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ignite_server.builds.egress import EgressPolicy
from ignite_server.builds.jail import BuildJail, BuildSpace
from ignite_server.images.git_checkout import REPO, checkout
from ignite_server.ports.build_pipeline import BuildFailed
from ignite_server.ports.image_builder import GitContext, RegistryCredentials
from tests.support import free_port, serve_git

ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(*argv: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *argv], cwd=cwd, env=ENV, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


class Repository:
    """A bare repository with two commits on ``main``, the first tagged
    ``v1``, and a branch ``feature`` with a third, served by git daemon."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "served" / "app.git"
        work = root / "work"
        git("init", "--quiet", "--bare", "--initial-branch=main", str(self.bare), cwd=root)
        git("init", "--quiet", "--initial-branch=main", str(work), cwd=root)
        (work / "Dockerfile").write_text("FROM scratch\n")
        git("add", "Dockerfile", cwd=work)
        git("commit", "--quiet", "-m", "one", cwd=work)
        self.first = git("rev-parse", "HEAD", cwd=work)
        git("tag", "v1", cwd=work)
        (work / "VERSION").write_text("2\n")
        git("add", "VERSION", cwd=work)
        git("commit", "--quiet", "-m", "two", cwd=work)
        self.second = git("rev-parse", "HEAD", cwd=work)
        git("checkout", "--quiet", "-b", "feature", cwd=work)
        (work / "FEATURE").write_text("yes\n")
        git("add", "FEATURE", cwd=work)
        git("commit", "--quiet", "-m", "three", cwd=work)
        self.feature = git("rev-parse", "HEAD", cwd=work)
        git("push", "--quiet", "--tags", str(self.bare), "main", "feature", cwd=work)
        self.port = free_port()
        self.url = ""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repository]:
    made = Repository(tmp_path_factory.mktemp("repo"))
    with serve_git(made.bare.parent, made.port) as base:
        made.url = f"{base}/app.git"
        yield made


@pytest.fixture(scope="module")
def space(repo: Repository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildSpace]:
    """Builds whose operator allowed the test's git daemon on loopback."""
    allowed = EgressPolicy.allowing(["default", f"127.0.0.1:{repo.port}"])
    with BuildSpace.reserved(tmp_path_factory.mktemp("state"), egress=allowed) as made:
        yield made


async def _listing(jail: BuildJail) -> tuple[set[str], int]:
    """The clone's top-level names and the uid its files belong to."""
    lines: list[str] = []
    await jail.run(
        "listing",
        ["/bin/sh", "-c", f"ls -A {REPO}; stat -c %u {REPO}/Dockerfile"],
        env=jail.env(),
        log=lines.append,
    )
    return set(lines[:-1]), int(lines[-1])


@pytest.mark.parametrize(
    ("ref", "expected", "files"),
    [
        ("main", "second", {"Dockerfile", "VERSION"}),
        ("feature", "feature", {"Dockerfile", "VERSION", "FEATURE"}),
        ("v1", "first", {"Dockerfile"}),
        ("", "second", {"Dockerfile", "VERSION"}),
    ],
)
async def test_branches_and_tags_are_checked_out(
    repo: Repository, space: BuildSpace, ref: str, expected: str, files: set[str]
) -> None:
    log: list[str] = []
    async with space.jail("git-tests", log.append, 120) as jail:
        commit = await checkout(jail, GitContext(repo.url, ref))
        names, owner = await _listing(jail)
    assert commit == getattr(repo, expected)
    assert names - {".git"} == files
    # The clone is the build's own uid's, never root's.
    assert owner == jail.uid != 0


@pytest.mark.parametrize("length", [40, 8])
async def test_a_commit_full_or_abbreviated_is_checked_out(
    repo: Repository, space: BuildSpace, length: int
) -> None:
    async with space.jail("git-tests", print, 120) as jail:
        commit = await checkout(jail, GitContext(repo.url, repo.first[:length]))
        names, _ = await _listing(jail)
    assert commit == repo.first
    assert "VERSION" not in names


@pytest.mark.parametrize("ref", ["nope", "deadbeef", "--upload-pack=touch", "main..v1"])
async def test_an_unknown_ref_says_so(repo: Repository, space: BuildSpace, ref: str) -> None:
    async with space.jail("git-tests", print, 120) as jail:
        with pytest.raises(BuildFailed) as failed:
            await checkout(jail, GitContext(repo.url, ref))
    assert failed.value.message == f"git ref {ref!r} not found in {repo.url}"


async def test_a_repository_that_is_not_there_fails_the_clone(
    repo: Repository, space: BuildSpace
) -> None:
    url = repo.url.replace("app.git", "missing.git")
    async with space.jail("git-tests", print, 120) as jail:
        with pytest.raises(BuildFailed) as failed:
            await checkout(jail, GitContext(url, "main"))
    assert failed.value.message.startswith(f"git clone of {url} failed: ")
    assert "\n" not in failed.value.message


async def test_a_loopback_repository_the_operator_did_not_allow_is_unreachable(
    repo: Repository, build_space: BuildSpace
) -> None:
    # The session's space allows the package registries only: the same
    # daemon, named by a tenant (as the builder names the repository it
    # clones), is refused by the egress proxy.
    log: list[str] = []
    async with build_space.jail("git-tests", log.append, 120, egress_urls=[repo.url]) as jail:
        with pytest.raises(BuildFailed, match=r"git clone of .* failed"):
            await checkout(jail, GitContext(repo.url, "main"))
    assert any("egress refused" in line and "loopback" in line for line in log), log


@pytest.mark.parametrize(
    "url", ["ext::sh -c touch% /tmp/pwned", "ssh://host/repo", "/srv/repo", "file:///srv/repo"]
)
async def test_other_url_schemes_are_refused(space: BuildSpace, url: str) -> None:
    async with space.jail("git-tests", print, 120) as jail:
        with pytest.raises(BuildFailed, match="is not one of"):
            await checkout(jail, GitContext(url, "main"))


async def test_credentials_stay_out_of_the_clone_and_the_log(
    repo: Repository, space: BuildSpace
) -> None:
    log: list[str] = []
    credentials = RegistryCredentials("bob", "s3cret-token")
    async with space.jail("git-tests", log.append, 120) as jail:
        assert await checkout(jail, GitContext(repo.url, "main", "", credentials)) == repo.second
        config: list[str] = []
        await jail.run(
            "config", ["/bin/cat", f"{REPO}/.git/config"], env=jail.env(), log=config.append
        )
    assert config and not any("s3cret" in line for line in config)
    assert not any("s3cret" in line for line in log)
