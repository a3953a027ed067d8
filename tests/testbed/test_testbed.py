"""The Kubernetes test bed (tools/testbed), proved end to end: it builds (or
reuses its cache), comes up, runs a real pod that answers HTTP from the host
on its pod IP, lets KEDA scale it through the external-metrics adapter, and
tears down leaving nothing on the machine.

Runs only with IGNITE_TESTBED=1: it needs root, and a first run on a new
machine spends ~15 minutes building Kubernetes and KEDA from the Go module
proxy. One test on purpose: the bed is one per machine (its bridge and ports
are fixed), so its steps must not be spread over parallel workers.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import pytest

from tests.testbed.bed import bring_up_testbed, leftovers

NAMESPACE = "default"
APP = "smoke-httpd"
GREETING = "hello from the ignite test bed"


async def _http_get(host: str, port: int, limit: float = 3.0) -> tuple[int, str]:
    """One HTTP/1.0 GET, without any client library between us and the pod."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), limit)
    try:
        writer.write(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), limit)
    finally:
        writer.close()
    head, _, body = raw.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


def _deployment(image: str) -> Any:
    """busybox httpd, hardened the way the Kubernetes backend will run apps:
    non-root, read-only root filesystem, no capabilities, RuntimeDefault
    seccomp, no service-account token."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "labels": {"app": APP}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {"labels": {"app": APP}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65534,
                        "runAsGroup": 65534,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "httpd",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "command": [
                                "sh",
                                "-c",
                                f"echo '{GREETING}' > /www/index.html && "
                                "exec httpd -f -p 8080 -h /www",
                            ],
                            "ports": [{"containerPort": 8080}],
                            "readinessProbe": {
                                "httpGet": {"path": "/", "port": 8080},
                                "periodSeconds": 1,
                            },
                            "resources": {"limits": {"memory": "32Mi", "cpu": "200m"}},
                            "securityContext": {
                                "readOnlyRootFilesystem": True,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "www", "mountPath": "/www"}],
                        }
                    ],
                    "volumes": [{"name": "www", "emptyDir": {}}],
                },
            },
        },
    }


def _cron_scaled_object(replicas: int) -> dict:
    """A KEDA ScaledObject whose cron window is open now: KEDA makes an HPA
    that reads the window's replica count through the metrics adapter, so the
    Deployment going 1 -> N proves the operator, the adapter's APIService and
    the controller manager's HPA work together."""
    now = datetime.datetime.now(datetime.UTC)
    start = f"{(now.minute - 1) % 60} * * * *"
    end = f"{(now.minute + 15) % 60} * * * *"
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": APP},
        "spec": {
            "scaleTargetRef": {"name": APP},
            "pollingInterval": 2,
            "minReplicaCount": 1,
            "maxReplicaCount": replicas,
            "triggers": [
                {
                    "type": "cron",
                    "metadata": {
                        "timezone": "Etc/UTC",
                        "start": start,
                        "end": end,
                        "desiredReplicas": str(replicas),
                    },
                }
            ],
        },
    }


async def _ready_pod_ips(core, want: int, limit: float) -> list[str]:
    """Wait (bounded) until `want` pods of the app are Ready; their IPs."""
    deadline = time.monotonic() + limit
    ips: list[str] = []
    while time.monotonic() < deadline:
        pods = await core.list_namespaced_pod(NAMESPACE, label_selector=f"app={APP}")
        ips = [
            p.status.pod_ip
            for p in pods.items
            if p.metadata.deletion_timestamp is None
            and p.status.pod_ip
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]
        if len(ips) >= want:
            return ips
        await asyncio.sleep(0.5)
    raise AssertionError(f"{len(ips)} of {want} pods Ready after {limit}s")


@pytest.mark.timeout(2700)
async def test_testbed_runs_a_pod_scales_it_with_keda_and_leaves_nothing() -> None:
    from kubernetes_asyncio import client, config

    async with bring_up_testbed() as bed:
        cfg = client.Configuration()
        await config.load_kube_config(config_file=bed.kubeconfig, client_configuration=cfg)
        async with client.ApiClient(cfg) as api:
            core, apps = client.CoreV1Api(api), client.AppsV1Api(api)

            node = await core.read_node(bed.node)
            assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
            service = await client.ApiregistrationV1Api(api).read_api_service(
                "v1beta1.external.metrics.k8s.io"
            )
            assert {c.type: c.status for c in service.status.conditions}["Available"] == "True"

            created = time.monotonic()
            await apps.create_namespaced_deployment(NAMESPACE, _deployment(bed.busybox_image))
            [ip] = await _ready_pod_ips(core, 1, 60)
            first_pod_secs = time.monotonic() - created
            assert ip.startswith(bed.pod_cidr.rsplit(".", 1)[0] + ".")
            status, body = await _http_get(ip, 8080)
            assert (status, body.strip()) == (200, GREETING)

            await client.CustomObjectsApi(api).create_namespaced_custom_object(
                "keda.sh", "v1alpha1", NAMESPACE, "scaledobjects", _cron_scaled_object(2)
            )
            scaled = time.monotonic()
            ips = await _ready_pod_ips(core, 2, 90)
            scale_secs = time.monotonic() - scaled
            for pod_ip in ips:
                assert (await _http_get(pod_ip, 8080))[0] == 200
            hpa = await client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(
                f"keda-hpa-{APP}", NAMESPACE
            )
            assert hpa.spec.max_replicas == 2
    print(
        f"\nup {bed.up_secs:.1f} s, first pod Ready {first_pod_secs:.1f} s after create,"
        f" KEDA 1 -> 2 in {scale_secs:.1f} s, down {bed.timings['down']:.1f} s"
    )
    assert await leftovers() == ""
