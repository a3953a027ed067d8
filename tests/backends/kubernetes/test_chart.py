"""The Helm chart (charts/ignite): it lints, renders, and the test bed's
apiserver accepts what it renders (server-side dry run, so admission and
the schemas of the real apiserver judge it)."""

from __future__ import annotations

import subprocess

from tests.backends.kubernetes.conftest import ROOT
from tests.support import unique_name

CHART = ROOT / "charts" / "ignite"


def _run(bed: dict[str, str], *argv: str, stdin: str | None = None) -> str:
    env = {"KUBECONFIG": bed["KUBECONFIG"], "PATH": bed["PATH"], "HOME": "/tmp"}
    done = subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_chart_lints_renders_and_the_apiserver_accepts_it(bed: dict[str, str]) -> None:
    helm = bed["TESTBED_HELM"]
    ns = unique_name("chart")
    _run(bed, helm, "lint", str(CHART))
    rendered = _run(bed, helm, "template", "ignite", str(CHART), "--namespace", ns)
    kinds = {
        line.split(":", 1)[1].strip() for line in rendered.splitlines() if line.startswith("kind:")
    }
    assert {"Deployment", "Service", "Role", "RoleBinding", "ServiceAccount"} <= kinds
    namespace = _run(bed, "kubectl", "create", "namespace", ns, "--dry-run=client", "-o", "yaml")
    _run(bed, "kubectl", "apply", "-f", "-", stdin=namespace)
    try:
        out = _run(
            bed,
            "kubectl",
            "apply",
            "--dry-run=server",
            "-n",
            ns,
            "-f",
            "-",
            stdin=rendered,
        )
        assert out.count("(server dry run)") == rendered.count("\nkind:") + rendered.startswith(
            "kind:"
        )
    finally:
        _run(bed, "kubectl", "delete", "namespace", ns, "--wait=false")
