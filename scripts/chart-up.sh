#!/usr/bin/env bash
# The chart on a cluster whose node can already pull the images: SeaweedFS as the S3 store
# (deploy/kind/seaweedfs.yaml), the chart's S3 Secret, `helm upgrade --install`, `helm test`
# and the API port-forwarded to http://127.0.0.1:${API_PORT:-8080}.
# `make kind-up` runs it on a kind cluster; the real-node tests (tests/realnode) on the dev
# cluster's real node, with images from the local registry. Re-running is safe.
#
# Settings (environment):
#   KUBE_CONTEXT       kubectl/helm context (empty: the current one of $KUBECONFIG)
#   NODE_IP            an address of the node that clients and pods reach (S3 NodePort 30333)
#   IMAGE_REGISTRY     prefix of the three images, e.g. "10.203.0.1:5000/" (default: none)
#   TAG                their tag (default 0.1.0)
#   SEAWEEDFS_IMAGE    replaces the upstream SeaweedFS image of the manifest
#   OPERATOR_REPLICAS  the operator's replicas (default: the chart's, 2)
#   EXTRA_VALUES       a values file applied last (e.g. images pinned by digest)
#   STATE              where the S3 credentials and the port-forward's pid go (default .kind)
set -euo pipefail
cd "$(dirname "$0")/.."

CONTEXT=${KUBE_CONTEXT:-}
NODE_IP=${NODE_IP:?set NODE_IP to an address of the node}
IMAGE_REGISTRY=${IMAGE_REGISTRY:-}
TAG=${TAG:-0.1.0}
NAMESPACE=${NAMESPACE:-mediaplane}
BUCKET=${BUCKET:-mediaplane}
API_PORT=${API_PORT:-8080}
STATE=${STATE:-.kind}
RELEASE=${RELEASE:-mediaplane}
UPSTREAM_SEAWEEDFS=chrislusf/seaweedfs:4.48

log() { printf '\033[1m[chart-up]\033[0m %s\n' "$*"; }
for tool in kubectl helm curl od; do
  command -v "$tool" >/dev/null || { echo "chart-up needs $tool on PATH" >&2; exit 1; }
done
context_args=()
[ -n "$CONTEXT" ] && context_args=(--context "$CONTEXT")
helm_context=()
[ -n "$CONTEXT" ] && helm_context=(--kube-context "$CONTEXT")
kc() { kubectl "${context_args[@]}" "$@"; }
mkdir -p "$STATE"

# S3: credentials generated once and kept in the cluster (and in $STATE/s3.env).
log "SeaweedFS (S3) in namespace mediaplane-s3"
sed "s|image: $UPSTREAM_SEAWEEDFS|image: ${SEAWEEDFS_IMAGE:-$UPSTREAM_SEAWEEDFS}|" \
  deploy/kind/seaweedfs.yaml | kc apply -f - >/dev/null
if ! kc -n mediaplane-s3 get secret seaweedfs-s3-config >/dev/null 2>&1; then
  access_key="MP$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
  secret_key="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
  printf '{"identities":[{"name":"mediaplane","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}' \
    "$access_key" "$secret_key" > "$STATE/s3.json"
  kc -n mediaplane-s3 create secret generic seaweedfs-s3-config --from-file=s3.json="$STATE/s3.json"
  rm -f "$STATE/s3.json"
  printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "$access_key" "$secret_key" > "$STATE/s3.env"
  chmod 600 "$STATE/s3.env"
fi
kc -n mediaplane-s3 rollout status deploy/seaweedfs --timeout=180s
# shellcheck disable=SC2016 # expanded by the pod's shell
kc -n mediaplane-s3 exec deploy/seaweedfs -- sh -c \
  'for i in $(seq 60); do echo "s3.bucket.create -name '"$BUCKET"'" | weed shell >/dev/null 2>&1 && exit 0; sleep 2; done; exit 1'

# The chart's Secret with the S3 key pair, from the SeaweedFS identity.
kc create namespace "$NAMESPACE" --dry-run=client -o yaml | kc apply -f - >/dev/null
set -a
# shellcheck source=/dev/null # (generated above)
. "$STATE/s3.env"
set +a
kc -n "$NAMESPACE" create secret generic mediaplane-s3 \
  --from-literal=AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
  --from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  --dry-run=client -o yaml | kc apply -f - >/dev/null

log "installing the chart (S3 public endpoint http://$NODE_IP:30333)"
values=(
  --set image.tag="$TAG"
  --set s3.endpoint=http://seaweedfs.mediaplane-s3.svc:8333
  --set s3.publicEndpoint="http://$NODE_IP:30333"
  --set s3.bucket="$BUCKET"
  --set s3.credentials.existingSecret=mediaplane-s3
  --set api.publicUrl="http://127.0.0.1:$API_PORT"
)
for component in operator api worker; do
  values+=(--set "$component.image.repository=${IMAGE_REGISTRY}mediaplane/$component")
done
[ -n "${OPERATOR_REPLICAS:-}" ] && values+=(--set operator.replicaCount="$OPERATOR_REPLICAS")
[ -n "${EXTRA_VALUES:-}" ] && values+=(-f "$EXTRA_VALUES")
# Helm installs crds/ only on first install; apply them so a re-run upgrades them too.
kc apply --server-side --force-conflicts -f charts/mediaplane/crds/ >/dev/null
helm "${helm_context[@]}" upgrade --install "$RELEASE" charts/mediaplane \
  --namespace "$NAMESPACE" --wait --timeout 5m "${values[@]}"
helm "${helm_context[@]}" test "$RELEASE" --namespace "$NAMESPACE" --timeout 2m

if [ -f "$STATE/port-forward.pid" ] && kill -0 "$(cat "$STATE/port-forward.pid")" 2>/dev/null; then
  kill "$(cat "$STATE/port-forward.pid")"
fi
kc -n "$NAMESPACE" port-forward "svc/$RELEASE-api" "$API_PORT:80" > "$STATE/port-forward.log" 2>&1 &
echo $! > "$STATE/port-forward.pid"
for _ in $(seq 30); do
  curl -fsS "http://127.0.0.1:$API_PORT/healthz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$API_PORT/healthz" >/dev/null
log "ready: API on http://127.0.0.1:$API_PORT (port-forward pid $(cat "$STATE/port-forward.pid"))"
