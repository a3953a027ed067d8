#!/usr/bin/env bash
# The test bed's certificates, made fresh for each bring-up under
# $TESTBED_DIR/pki (nothing long-lived, nothing shared with a real cluster):
#   ca              signs every server and client certificate below
#   apiserver       serving cert: loopback, the kubernetes Service IP and names
#   admin           client in system:masters (the kubeconfig handed to tests)
#   node            the kubelet's client identity (system:node:<host>, Node authorizer)
#   kubelet-client  what the apiserver shows the kubelet for logs / exec
#   controller-manager, scheduler, kube-proxy   their built-in RBAC identities
#   sa              service-account token signing key pair
#   front-proxy-ca, front-proxy-client   the aggregator's requestheader identity,
#                   needed for KEDA's metrics adapter (an aggregated API)
#   keda            the operator's gRPC metrics service and the adapter's
#                   serving cert (both use tls.crt / tls.key / ca.crt in one dir)
# ECDSA P-256 keys: generated in milliseconds, so bring-up stays fast.
set -euo pipefail
. "$(dirname "$0")/env.sh"

pki=$TESTBED_DIR/pki
mkdir -p "$pki"
cd "$pki"
host=$(hostname)

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }

ca() {  # name CN
  key "$1"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 30 -out "$1.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

cert() {  # name subject usages(serverAuth,clientAuth) sans(or "") [ca]
  local name=$1 subject=$2 usage=$3 sans=$4 signer=${5:-ca}
  key "$name"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } > "$name.ext"
  openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA "$signer.crt" -CAkey "$signer.key" -CAcreateserial \
    -days 30 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

gateway=${TESTBED_POD_CIDR%.*}.1
ca ca "ignite-testbed-ca"
ca front-proxy-ca "ignite-testbed-front-proxy-ca"
cert apiserver "/CN=kube-apiserver" serverAuth \
  "IP:127.0.0.1,IP:$TESTBED_SERVICE_IP,DNS:localhost,DNS:$host,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert admin "/O=system:masters/CN=ignite-testbed-admin" clientAuth ""
cert node "/O=system:nodes/CN=system:node:$host" clientAuth ""
cert kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth ""
cert kubelet "/CN=$host" serverAuth "IP:127.0.0.1,DNS:localhost,DNS:$host"
cert controller-manager "/CN=system:kube-controller-manager" clientAuth ""
cert scheduler "/CN=system:kube-scheduler" clientAuth ""
cert kube-proxy "/CN=system:kube-proxy" clientAuth ""
cert front-proxy-client "/CN=front-proxy-client" clientAuth "" front-proxy-ca
cert keda "/CN=keda-operator" serverAuth,clientAuth \
  "IP:127.0.0.1,IP:$gateway,DNS:localhost,DNS:keda-operator,DNS:keda-operator.keda.svc,DNS:keda-operator.keda.svc.cluster.local,DNS:keda-metrics-apiserver,DNS:keda-metrics-apiserver.keda.svc,DNS:keda-metrics-apiserver.keda.svc.cluster.local,DNS:keda-admission-webhooks.keda.svc"
openssl ecparam -name prime256v1 -genkey -noout -out sa.key 2>/dev/null
openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
# KEDA reads ca.crt / tls.crt / tls.key from one folder.
mkdir -p keda-certs
cp ca.crt keda-certs/ca.crt && cp keda.crt keda-certs/tls.crt && cp keda.key keda-certs/tls.key
chmod 600 ./*.key keda-certs/tls.key
rm -f ./*.srl
