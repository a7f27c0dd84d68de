#!/usr/bin/env bash
# `make kind-up`: mediaplane on a local kind cluster, for users with Docker.
#   kind cluster → the three images built and loaded → scripts/chart-up.sh (SeaweedFS as the
#   S3 store, the Helm chart, `helm test`, the API port-forwarded to
#   http://127.0.0.1:${API_PORT:-8080}).
# Re-running is safe: each step checks or upgrades what exists. `make kind-down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER:-mediaplane}
TAG=${TAG:-0.1.0}

log() { printf '\033[1m[kind-up]\033[0m %s\n' "$*"; }
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind-up needs $tool on PATH" >&2; exit 1; }
done

if ! kind get clusters | grep -qx "$CLUSTER"; then
  log "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --config deploy/kind/cluster.yaml --wait 120s
fi

for target in operator api worker; do
  log "building mediaplane/$target:$TAG"
  docker build -f images/Dockerfile --target "$target" -t "mediaplane/$target:$TAG" .
  kind load docker-image --name "$CLUSTER" "mediaplane/$target:$TAG"
done

# Presigned S3 URLs carry the node's address on the docker bridge, which both the worker
# pods and a Linux host reach.
node_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$CLUSTER-control-plane")
KUBE_CONTEXT="kind-$CLUSTER" NODE_IP="$node_ip" TAG="$TAG" STATE=.kind \
  OPERATOR_REPLICAS="${OPERATOR_REPLICAS:-1}" scripts/chart-up.sh
log "next: make kind-e2e; stop: kill \$(cat .kind/port-forward.pid); make kind-down"
