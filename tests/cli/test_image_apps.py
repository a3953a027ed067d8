"""Image apps end to end, deployed with ``dodil ignite app deploy`` as real
apps' READMEs do, against the test platform with its embedded registry:

- a ``FROM scratch`` image of a static Go server (the probe of
  tests/backends/local/image_app) built from a Dockerfile, answering on its
  app URL and through Invoke, scaled to zero and back;
- a Node front end whose base image the test makes from the host's ``node``
  and pushes to a registry of the user's own, ``USER 1000``, ``HOME``
  under /tmp, listening on the very port of its backend's URL (on ``::``,
  on ``0.0.0.0``), serving a page and proxying ``/api`` to a Python app by
  its ``http://`` and its ``https://`` URL, opened in a real browser;
- a git repository served by a loopback ``git daemon``, and a bad ref;
- prebuilt images: re-tagged, a wrong digest, a registry that wants
  credentials (with and without a secret);
- immutability: a tag pushed again changes no published version, a
  rollback runs the old digest;
- the containment battery for an image pod.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_launcher import LocalPlatform
from ignite_server.images.registry import EmbeddedRegistry
from tests.cli.runner import Dodil
from tests.eventually import eventually
from tests.support import SERVICE_PORTS, bcrypt, serve_git

SCRATCH_DOCKERFILE = """\
FROM scratch
COPY server /server
ENV PROBE_VERSION={version}
EXPOSE 8080
ENTRYPOINT ["/server"]
"""


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A registry (the embedded kind) that answers only to one account:
    (host, user, password), on a port the session's platform may reach."""
    state = tmp_path_factory.mktemp("auth-registry")
    password = f"canary-secret-{uuid.uuid4().hex}"
    htpasswd = state / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt(password)}\n")
    registry = EmbeddedRegistry(state, port=SERVICE_PORTS[1], htpasswd=htpasswd)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(registry.start(), loop).result(60)
    try:
        yield registry.host, "alice", password
    finally:
        asyncio.run_coroutine_threadsafe(registry.close(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scratch_context(folder: Path, binary: Path, version: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(binary, folder / "server")
    (folder / "Dockerfile").write_text(SCRATCH_DOCKERFILE.format(version=version))
    return folder


def _get(platform: LocalPlatform, org: str, app: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(
        kw.pop("method", "GET"),
        platform.http_url + path,
        headers={"Host": platform.app_host(org, app), **kw.pop("headers", {})},
        timeout=120,
        **kw,
    )


def _app(ignite: Dodil, name: str) -> dict[str, Any]:
    return json.loads(ignite("ignite", "app", "get", name, "-o", "json").ok().stdout)


def _skopeo(*args: str) -> None:
    subprocess.run(["skopeo", *args], check=True, capture_output=True, timeout=120)


def _copy(src: str, dest: str, *extra: str) -> None:
    _skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", *extra, src, dest)


def _invoke(stub, org: str, app: str, path: str) -> tuple[int, bytes]:
    status, body = 0, b""
    request = compute.InvokeRequest(
        organization_name=org, app_name=app, http={"method": "HTTP_METHOD_GET", "path": path}
    )
    for frame in stub.Invoke(request, timeout=120):
        kind = frame.WhichOneof("frame")
        if kind == "head":
            status = frame.head.status_code
        elif kind == "chunk":
            body += frame.chunk.data
    return status, body


def test_a_scratch_image_deploys_answers_and_scales_from_zero(
    ignite: Dodil, platform: LocalPlatform, stub, org: str, probe_binary: Path, tmp_path: Path
):
    web = _scratch_context(tmp_path / "web", probe_binary)
    deployed = ignite(
        "ignite", "app", "deploy", "probe", "--code", str(web),
        "--dockerfile-path", "Dockerfile", "--health-path", "/healthz",
        "--allow-unauthenticated", "--scaledown-period-secs", "1", "--env", "GREETING=hi",
        timeout=600,
    ).ok()  # fmt: skip
    assert f"http://probe-{org}.{platform.apps_domain}" in deployed.stdout

    answer = _get(platform, org, "probe", "/some/path?x=1", method="POST", data=b"hello")
    assert answer.status_code == 200, answer.text
    echo = answer.json()
    assert (echo["method"], echo["path"], echo["query"], echo["body"]) == (
        "POST", "/some/path", "x=1", "hello",
    )  # fmt: skip
    env = _get(platform, org, "probe", "/env").json()
    assert env["env"]["GREETING"] == "hi"
    assert env["env"]["PORT"] == "8080"
    assert env["uid"] != 0

    status, body = _invoke(stub, org, "probe", "/via/invoke?y=2")
    assert status == 200
    assert json.loads(body)["path"] == "/via/invoke"

    meta = _app(ignite, "probe")
    assert "@sha256:" in meta["image_ref"]
    assert meta["deployment_mode"] == "DEPLOYMENT_MODE_IMAGE"
    # What runs it reads where a runtime would, in the detail and the list.
    detail = ignite("ignite", "app", "get", "probe").ok().stdout
    assert "image (Dockerfile)" in detail and meta["image_ref"] in detail
    assert "image (Dockerfile)" in ignite("ignite", "app", "list").ok().stdout
    assert "image (Dockerfile)" in ignite("ignite", "version", "list", "probe").ok().stdout
    eventually(
        lambda: not _app(ignite, "probe").get("ready_replicas", 0),
        within=60,
        every=0.5,
        what="the image app scaled to zero",
    )
    again = _get(platform, org, "probe", "/after/zero")
    assert again.status_code == 200 and again.json()["path"] == "/after/zero"


# --- a Node front end --------------------------------------------------------

SERVER_MJS = """\
import http from "node:http";
import { readFile, writeFile, mkdir } from "node:fs/promises";

const backend = process.env.BACKEND_URL;
http.createServer(async (req, res) => {
  if (req.url === "/healthz") return res.end("ok");
  if (req.url === "/api" && req.method === "POST") {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    try {
      const upstream = await fetch(backend + "/", {
        method: "POST", body: Buffer.concat(chunks),
        headers: { "content-type": "application/json" },
      });
      res.writeHead(upstream.status, { "content-type": "application/json" });
      return res.end(await upstream.text());
    } catch (error) {
      res.writeHead(502, { "content-type": "application/json" });
      return res.end(JSON.stringify({ proxy_error: String(error.cause ?? error) }));
    }
  }
  if (req.url === "/home") {
    await mkdir(process.env.HOME, { recursive: true });
    await writeFile(process.env.HOME + "/note", "written");
    return res.end(JSON.stringify({ home: process.env.HOME, uid: process.getuid() }));
  }
  res.writeHead(200, { "content-type": "text/html" });
  res.end(await readFile(new URL("./index.html", import.meta.url)));
}).listen(Number(process.env.PORT), process.env.LISTEN_HOST);
"""
INDEX_HTML = """\
<!doctype html><title>desk</title><h1>Support desk</h1>
<p id="answer">asking...</p>
<script>
fetch("/api", { method: "POST", body: JSON.stringify({ question: "refund?" }) })
  .then((r) => r.text())
  .then((text) => { document.getElementById("answer").textContent = text; });
</script>
"""
BACKEND_HANDLER = b"""\
import json
import os

def handler(payload, ctx):
    return {"backend": "got", "question": json.loads(payload)["question"]}
"""
BROWSE_MJS = Path(__file__).with_name("open_page.mjs")
CONSOLE_DIR = Path(__file__).parents[2] / "console"


def _buildah(work: Path) -> Any:
    """buildah with a storage of its own under ``work``: ``run(*args)``."""
    store = ["--storage-driver", "vfs", "--root", str(work / "root"),
             "--runroot", str(work / "run")]  # fmt: skip

    def run(*args: str) -> str:
        done = subprocess.run(
            ["buildah", *store, *args], capture_output=True, text=True, check=True, timeout=300
        )
        return done.stdout.strip()

    return run


def _push_probe(reference: str, binary: Path, version: int, work: Path) -> str:
    """The probe in a FROM-scratch image (as SCRATCH_DOCKERFILE makes it),
    built with buildah and pushed to a registry of the user's own under
    ``reference`` (a tag); its digest."""
    buildah = _buildah(work)
    container = buildah("from", "scratch")
    buildah("copy", container, str(binary), "/server")
    buildah(
        "config", "--entrypoint", '["/server"]', "--port", "8080",
        "--env", f"PROBE_VERSION={version}", container,
    )  # fmt: skip
    buildah("commit", "--quiet", container, f"probe-{version}")
    digest_file = work / f"digest-{version}"
    buildah(
        "push", "--quiet", "--tls-verify=false", "--digestfile", str(digest_file),
        f"probe-{version}", f"docker://{reference}",
    )  # fmt: skip
    return digest_file.read_text().strip()


def _node_base_image(registry: str, work: Path) -> str:
    """A base image with the host's node and the libraries it links, made
    with buildah (no image registry is reachable here) and pushed to a
    registry of the user's own, where the platform fetches it for the builds
    that start FROM it."""
    node = Path(shutil.which("node") or "/usr/bin/node").resolve()
    listing = subprocess.run(["ldd", str(node)], capture_output=True, text=True, check=True)
    libraries = [
        Path(part)
        for line in listing.stdout.splitlines()
        for part in line.split()
        if part.startswith("/")
    ]
    buildah = _buildah(work)
    container = buildah("from", "scratch")
    buildah("copy", container, str(node), "/usr/bin/node")
    for library in libraries:
        buildah("copy", container, str(library.resolve()), str(library))
    reference = f"{registry}/base-{uuid.uuid4().hex[:8]}/node:20"
    buildah("config", "--env", "PATH=/usr/bin", container)
    buildah("commit", container, "node-base")
    buildah("push", "--tls-verify=false", "node-base", f"docker://{reference}")
    return reference


@pytest.fixture
def node_base(
    platform: LocalPlatform, user_registry: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The base image, in a registry of the user's own (which the session's
    platform may reach: tests/conftest.py)."""
    assert platform.registry, "the platform runs no embedded registry"
    return _node_base_image(user_registry, tmp_path_factory.mktemp("buildah"))


def _open_in_browser(url: str) -> str:
    """The text of the page's ``#answer`` once its script filled it, as
    Debian's chromium (headless, driven by playwright-core) shows it."""
    run = subprocess.run(
        ["node", str(BROWSE_MJS), url],
        env={**os.environ, "CONSOLE_DIR": str(CONSOLE_DIR)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run.stdout.strip()


@pytest.mark.parametrize(
    ("scheme", "listen_host"), [("http", "::"), ("https", "0.0.0.0")], ids=["http-v6", "https-v4"]
)
def test_a_node_front_end_on_its_backends_port_proxies_to_a_python_backend(
    ignite: Dodil,
    platform: LocalPlatform,
    org: str,
    tmp_path: Path,
    node_base: str,
    scheme: str,
    listen_host: str,
):
    """The front end's BACKEND_URL carries the edge's port, and the front end
    listens on that same port itself (on every address): both work, and a
    browser opening the front end's page gets the backend's answer."""
    backend = tmp_path / "backend"
    backend.mkdir()
    (backend / "handler.py").write_bytes(BACKEND_HANDLER)
    ignite(
        "ignite", "app", "deploy", "backend", "--code", str(backend), "--runtime", "python",
        "--allow-unauthenticated",
    ).ok()  # fmt: skip
    port = platform.gateway_port if scheme == "http" else platform.https_port
    assert port is not None
    backend_url = f"{scheme}://{platform.app_host(org, 'backend')}:{port}"

    web = tmp_path / "web"
    web.mkdir()
    (web / "server.mjs").write_text(SERVER_MJS)
    (web / "index.html").write_text(INDEX_HTML)
    (web / "Dockerfile").write_text(
        f"FROM {node_base}\nUSER 1000\nENV HOME=/tmp/web-home LISTEN_HOST={listen_host}\n"
        f"WORKDIR /app\nEXPOSE {port}\n"
        'COPY server.mjs index.html /app/\nCMD ["node", "server.mjs"]\n'
    )
    deployed = ignite(
        "ignite", "app", "deploy", "web", "--code", str(web), "--dockerfile-path", "Dockerfile",
        "--health-path", "/healthz", "--allow-unauthenticated", "--env",
        f"BACKEND_URL={backend_url}",
        timeout=600,
    ).ok()  # fmt: skip
    assert f"web-{org}" in deployed.stdout

    page = _get(platform, org, "web", "/")
    assert page.status_code == 200
    assert page.text == INDEX_HTML
    api = _get(platform, org, "web", "/api", method="POST", json={"question": "refund?"})
    assert api.status_code == 200, api.text
    assert api.json() == {"backend": "got", "question": "refund?"}
    home = _get(platform, org, "web", "/home").json()
    assert home["home"] == "/tmp/web-home" and home["uid"] != 0
    env = json.loads(ignite("ignite", "app", "get", "web", "-o", "json", "--show-env").ok().stdout)
    assert env["env"]["BACKEND_URL"] == backend_url

    front = f"http://{platform.app_host(org, 'web')}:{platform.gateway_port}/"
    shown = _open_in_browser(front)
    assert json.loads(shown) == {"backend": "got", "question": "refund?"}

    if scheme == "https":
        # The same https URL from a user's curl, trusting the platform's CA.
        curl = subprocess.run(
            [
                "curl", "-sS", "--cacert", str(platform.ca_file),
                "--resolve", f"{platform.app_host(org, 'backend')}:{port}:127.0.0.1",
                "-d", '{"question": "curl?"}', backend_url + "/",
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert curl.returncode == 0, curl.stderr
        assert json.loads(curl.stdout) == {"backend": "got", "question": "curl?"}


# --- from git ------------------------------------------------------------------


@pytest.fixture
def git_daemon(tmp_path: Path, probe_binary: Path) -> Iterator[str]:
    """A bare repository with the probe's Dockerfile on branch main and tag
    v1, served read-only by git daemon on loopback; yields its URL."""
    bare = tmp_path / "served" / "probe.git"
    work = _scratch_context(tmp_path / "checkout", probe_binary, version=7)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    for step in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["commit", "-q", "-m", "probe"],
        ["tag", "v1"],
        ["push", "-q", str(bare), "main", "v1"],
    ):
        subprocess.run([*git, *step], cwd=work, check=True)
    # A port the session's platform lets builds reach (tests/support.py).
    with serve_git(bare.parent, SERVICE_PORTS[0]) as base:
        yield f"{base}/probe.git"


def test_a_git_repository_builds_and_a_bad_ref_is_a_clear_build_error(
    ignite: Dodil, platform: LocalPlatform, org: str, git_daemon: str
):
    ignite(
        "ignite", "app", "deploy", "fromgit", "--git-url", git_daemon, "--git-ref", "v1",
        "--health-path", "/healthz", "--allow-unauthenticated", timeout=600,
    ).ok()  # fmt: skip
    env = _get(platform, org, "fromgit", "/env").json()
    assert env["env"]["PROBE_VERSION"] == "7"

    failed = ignite(
        "ignite", "app", "deploy", "fromgit", "--git-url", git_daemon, "--git-ref", "nope",
        timeout=600,
    )  # fmt: skip
    assert failed.code != 0
    line = failed.error_line()
    assert "nope" in line and "not found" in line, line
    # The build's output is in the app's logs (stream BUILD).
    logs = ignite("ignite", "logs", "fromgit").ok().stdout
    assert f"cloning {git_daemon} at v1" in logs and "not found" in logs, logs
    # The failed build changed nothing that serves.
    assert _get(platform, org, "fromgit", "/env").json()["env"]["PROBE_VERSION"] == "7"


# --- prebuilt images and immutability -----------------------------------------


def test_prebuilt_images_by_tag_wrong_digest_and_private_registries(
    ignite: Dodil,
    platform: LocalPlatform,
    org: str,
    probe_binary: Path,
    tmp_path: Path,
    auth_registry: tuple[str, str, str],
    user_registry: str,
):
    mirror = f"{user_registry}/mirror-{org}/probe"
    digest = _push_probe(f"{mirror}:v1", probe_binary, 3, tmp_path / "build")
    ignite(
        "ignite", "app", "deploy", "byoi", "--image", f"{mirror}:v1", "--health-path", "/healthz",
        "--allow-unauthenticated", timeout=300,
    ).ok()  # fmt: skip
    assert _get(platform, org, "byoi", "/env").json()["env"]["PROBE_VERSION"] == "3"
    image_ref = _app(ignite, "byoi")["image_ref"]
    assert image_ref.endswith(digest)
    # Copied into the organization's own part of the platform's registry.
    assert image_ref.startswith(f"{platform.registry}/ignite/{org}/byoi@")

    started = time.monotonic()
    wrong = ignite("ignite", "app", "deploy", "byoi", "--image", f"{mirror}@sha256:{'0' * 64}")
    assert wrong.code != 0 and "IMAGE_NOT_FOUND" in wrong.stderr, wrong.stderr
    assert time.monotonic() - started < 60

    host, user, password = auth_registry
    _copy(
        f"docker://{mirror}:v1",
        f"docker://{host}/private/probe:v1",
        f"--dest-creds={user}:{password}",
    )
    denied = ignite("ignite", "app", "deploy", "private", "--image", f"{host}/private/probe:v1")
    assert denied.code != 0 and "REGISTRY_AUTH_FAILED" in denied.stderr, denied.stderr
    ignite(
        "ignite", "secret", "create", "private-reg", "--username", user, "--password-stdin",
        "--host", host, input=password + "\n",
    ).ok()  # fmt: skip
    listed = ignite("ignite", "secret", "list").ok().stdout
    assert "private-reg" in listed and host in listed and password not in listed
    ignite(
        "ignite", "app", "deploy", "private", "--image", f"{host}/private/probe:v1",
        "--registry-secret", "private-reg", "--health-path", "/healthz",
        "--allow-unauthenticated", timeout=300,
    ).ok()  # fmt: skip
    assert _get(platform, org, "private", "/env").json()["env"]["PROBE_VERSION"] == "3"
    ignite("ignite", "secret", "delete", "private-reg").ok()
    assert "private-reg" not in ignite("ignite", "secret", "list").ok().stdout


def test_published_image_versions_are_immutable(
    ignite: Dodil,
    platform: LocalPlatform,
    org: str,
    probe_binary: Path,
    tmp_path: Path,
    user_registry: str,
):
    tag = f"{user_registry}/moving-{org}/probe:latest"
    first = _push_probe(tag, probe_binary, 1, tmp_path / "one")
    ignite(
        "ignite", "app", "deploy", "moving", "--image", tag, "--health-path", "/healthz",
        "--allow-unauthenticated", timeout=300,
    ).ok()  # fmt: skip
    assert _get(platform, org, "moving", "/env").json()["env"]["PROBE_VERSION"] == "1"

    second = _push_probe(tag, probe_binary, 2, tmp_path / "two")  # the tag moves
    assert _get(platform, org, "moving", "/env").json()["env"]["PROBE_VERSION"] == "1"

    ignite("ignite", "app", "deploy", "moving", "--image", tag, timeout=300).ok()
    assert _get(platform, org, "moving", "/env").json()["env"]["PROBE_VERSION"] == "2"
    ignite("ignite", "app", "rollback", "moving", "--version", "1").ok()
    assert _get(platform, org, "moving", "/env").json()["env"]["PROBE_VERSION"] == "1"
    versions = json.loads(ignite("ignite", "version", "list", "moving", "-o", "json").ok().stdout)
    refs = {v["version"]: v["image_ref"] for v in versions}
    assert refs[1].endswith(first)
    assert refs[2].endswith(second)


# --- containment ----------------------------------------------------------------


def _pod_processes(org: str, app: str) -> list[dict[str, str]]:
    """/proc/<pid>/status fields of the host processes of the app's pods."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            if f"IGNITE_FUNCTION_ID={org}/{app}".encode() not in environ:
                continue
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        found.append({k: v.strip() for k, v in fields.items()})
    return found


def test_image_pods_pass_the_containment_battery(
    ignite: Dodil, platform: LocalPlatform, org: str, probe_binary: Path, tmp_path: Path
):
    ignite(
        "ignite", "app", "deploy", "jail",
        "--code", str(_scratch_context(tmp_path / "j", probe_binary)),
        "--dockerfile-path", "Dockerfile", "--health-path", "/healthz",
        "--allow-unauthenticated", timeout=600,
    ).ok()  # fmt: skip

    def probe(path: str) -> Any:
        answer = _get(platform, org, "jail", path)
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert probe("/write?path=/tmp/f") == "ok"
    for mode in ("4755", "2755", "6777"):
        assert probe(f"/chmod?path=/tmp/f&mode={mode}").startswith("denied"), mode
    assert probe("/write?path=/etc/owned").startswith("denied")  # read-only root
    assert probe("/write?path=/server").startswith("denied")
    # Host services on loopback are not reachable: the pod has its own network.
    for port in (platform.gateway_port, int(platform.grpc_target.rsplit(":", 1)[1])):
        assert probe(f"/connect?addr=127.0.0.1:{port}").startswith("denied"), port
    assert probe("/env")["uid"] != 0

    processes = _pod_processes(org, "jail")
    assert processes, "no host process of the image pod found"
    for status in processes:
        # Its own network namespace, with loopback only.
        net = Path(f"/proc/{status['Pid']}/net/dev").read_text().splitlines()[2:]
        assert sorted(line.split(":")[0].strip() for line in net) == ["lo"]
        uids = status["Uid"].split()
        assert "0" not in uids, status["Uid"]
        assert int(status["CapEff"], 16) == 0
        assert int(status["CapBnd"], 16) == 0
        assert status["NoNewPrivs"] == "1"
        assert status["Seccomp"] == "2"
