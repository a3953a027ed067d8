"""Checking out a repository at a branch, a tag or a commit, as the build
uid; refs and URLs that lead nowhere fail in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ignite_server.containment.identities import BUILD_UID
from ignite_server.images.git_checkout import checkout
from ignite_server.ports.build_pipeline import BuildFailed
from ignite_server.ports.image_builder import GitCheckout

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
    ``v1``, and a branch ``feature`` with a third."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "app.git"
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
        self.url = f"file://{self.bare}"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repository:
    return Repository(tmp_path_factory.mktemp("repo"))


async def _checkout(repo: Repository, ref: str, dest: Path, log: list[str]) -> str:
    return await checkout(GitCheckout(url=repo.url, ref=ref, dest=dest, log=log.append))


@pytest.mark.parametrize(
    ("ref", "expected", "files"),
    [
        ("main", "second", {"Dockerfile", "VERSION"}),
        ("feature", "feature", {"Dockerfile", "VERSION", "FEATURE"}),
        ("v1", "first", {"Dockerfile"}),
    ],
)
async def test_branches_and_tags_are_checked_out(
    repo: Repository, tmp_path: Path, ref: str, expected: str, files: set[str]
) -> None:
    log: list[str] = []
    commit = await _checkout(repo, ref, tmp_path / "src", log)
    assert commit == getattr(repo, expected)
    assert {p.name for p in (tmp_path / "src").iterdir()} - {".git"} == files
    # The clone ran as the build uid, never root.
    assert (tmp_path / "src" / "Dockerfile").stat().st_uid == BUILD_UID


@pytest.mark.parametrize("length", [40, 8])
async def test_a_commit_full_or_abbreviated_is_checked_out(
    repo: Repository, tmp_path: Path, length: int
) -> None:
    commit = await _checkout(repo, repo.first[:length], tmp_path / "src", [])
    assert commit == repo.first
    assert not (tmp_path / "src" / "VERSION").exists()


@pytest.mark.parametrize("ref", ["nope", "deadbeef", "--upload-pack=touch", "main..v1"])
async def test_an_unknown_ref_says_so(repo: Repository, tmp_path: Path, ref: str) -> None:
    with pytest.raises(BuildFailed) as failed:
        await _checkout(repo, ref, tmp_path / "src", [])
    assert failed.value.message == f"git ref {ref!r} not found in {repo.url}"


async def test_a_repository_that_is_not_there_fails_the_clone(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/missing.git"
    with pytest.raises(BuildFailed) as failed:
        await checkout(GitCheckout(url=url, ref="main", dest=tmp_path / "src", log=print))
    assert failed.value.message.startswith(f"git clone of {url} failed: ")
    assert "\n" not in failed.value.message


@pytest.mark.parametrize("url", ["ext::sh -c touch% /tmp/pwned", "ssh://host/repo", "/srv/repo"])
async def test_other_url_schemes_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(BuildFailed, match="is not one of"):
        await checkout(GitCheckout(url=url, ref="main", dest=tmp_path / "src", log=print))


async def test_credentials_stay_out_of_the_url_and_the_log(
    repo: Repository, tmp_path: Path
) -> None:
    from ignite_server.ports.image_builder import RegistryCredentials

    log: list[str] = []
    request = GitCheckout(
        url=repo.url,
        ref="main",
        dest=tmp_path / "src",
        log=log.append,
        credentials=RegistryCredentials("bob", "s3cret-token"),
    )
    assert await checkout(request) == repo.second
    assert "s3cret" not in (tmp_path / "src" / ".git" / "config").read_text()
    assert not any("s3cret" in line for line in log)
