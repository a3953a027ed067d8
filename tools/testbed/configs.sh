#!/usr/bin/env bash
# Writes every daemon's configuration under $TESTBED_DIR: containerd, the CNI
# network, kubelet, kube-proxy and the kubeconfigs. Every path, socket and
# port points inside the work folder or at loopback, so the bed never reads or
# writes a system-wide default (/etc/containerd, /var/lib/kubelet, /etc/cni).
set -euo pipefail
. "$(dirname "$0")/env.sh"

d=$TESTBED_DIR
host=$(hostname)
gateway=${TESTBED_POD_CIDR%.*}.1
mkdir -p "$d/containerd" "$d/cni/net.d" "$d/kubelet" "$d/kubeconfig" "$d/pod-logs"

# containerd: its own root, state and socket. restrict_oom_score_adj is the
# one setting real pods need here: root lacks CAP_SYS_RESOURCE, so runc could
# not lower oom_score_adj and every sandbox would fail to start.
# netns_mounts_under_state_dir keeps the pods' network namespaces under the
# work folder instead of /run/netns, where tear-down can find all of them.
cat > "$d/containerd/config.toml" <<TOML
version = 2
root = "$d/containerd/root"
state = "$d/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$d/containerd/containerd.sock"
[ttrpc]
  address = "$d/containerd/containerd.sock.ttrpc"
[debug]
  address = "$d/containerd/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "ignite.local/testbed/pause:1"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$d/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$d/containerd/certs.d"
TOML

# The registry on loopback speaks plain HTTP: one hosts.toml says so for its
# host:port (no TLS to skip, nothing else reachable: other registries keep
# containerd's defaults and answer nothing here).
registry=127.0.0.1:$TESTBED_REGISTRY_PORT
mkdir -p "$d/containerd/certs.d/$registry"
cat > "$d/containerd/certs.d/$registry/hosts.toml" <<TOML
server = "http://$registry"
[host."http://$registry"]
  capabilities = ["pull", "resolve"]
TOML

# One bridge with host-local addresses. No masquerading and no port mapping:
# pods talk only to the host and each other, and no iptables rules of CNI's
# own are left to clean up.
cat > "$d/cni/net.d/10-$TESTBED_CNI_NAME.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "$TESTBED_CNI_NAME",
  "plugins": [{
    "type": "bridge",
    "bridge": "$TESTBED_BRIDGE",
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "dataDir": "$d/cni/ipam",
      "ranges": [[{"subnet": "$TESTBED_POD_CIDR", "gateway": "$gateway"}]],
      "routes": [{"dst": "0.0.0.0/0"}]
    }
  }]
}
JSON

# kubeconfig NAME CERT: a kubeconfig for the apiserver on loopback.
kubeconfig() {
  cat > "$d/kubeconfig/$1.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: ignite-testbed
  cluster:
    server: https://127.0.0.1:$TESTBED_APISERVER_PORT
    certificate-authority: $d/pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $d/pki/$2.crt
    client-key: $d/pki/$2.key
contexts:
- name: ignite-testbed
  context: {cluster: ignite-testbed, user: $1, namespace: default}
current-context: ignite-testbed
YAML
}
kubeconfig admin admin
kubeconfig kubelet node
kubeconfig controller-manager controller-manager
kubeconfig scheduler scheduler
kubeconfig kube-proxy kube-proxy

# kubelet: cgroupfs driver on this machine's cgroup v1 (failCgroupV1: false,
# or 1.34 refuses to start), loopback-only ports, its own root, log and
# plugin folders. Image garbage collection and disk-pressure eviction are off:
# the bed's images are loaded by hand and cannot be pulled back.
cat > "$d/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $d/pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $d/pki/kubelet.crt
tlsPrivateKeyFile: $d/pki/kubelet.key
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$d/containerd/containerd.sock
podLogsDir: $d/pod-logs
volumePluginDir: $d/kubelet/volume-plugins
clusterDomain: cluster.local
clusterDNS: [$TESTBED_DNS_IP]
resolvConf: ""
registerNode: true
maxPods: 110
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi"}
evictionPressureTransitionPeriod: 5s
nodeStatusUpdateFrequency: 2s
syncFrequency: 5s
fileCheckFrequency: 5s
serializeImagePulls: false
YAML

# kube-proxy in iptables mode; it may not tune conntrack (not permitted here).
cat > "$d/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $d/kubeconfig/kube-proxy.kubeconfig}
hostnameOverride: $host
clusterCIDR: $TESTBED_POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$gateway/32"]
conntrack: {maxPerCore: 0, min: 0}
iptables: {localhostNodePorts: false, syncPeriod: 30s, minSyncPeriod: 1s}
YAML
