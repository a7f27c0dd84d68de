#!/usr/bin/env bash
# `make kind-up`: mediaplane on a local kind cluster, for users with Docker.
#   kind cluster → the three images built and loaded → SeaweedFS as the S3 store →
#   the Helm chart → the API port-forwarded to http://127.0.0.1:${API_PORT:-8080}.
# Re-running is safe: each step checks or upgrades what exists. `make kind-down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER:-mediaplane}
TAG=${TAG:-0.1.0}
NAMESPACE=${NAMESPACE:-mediaplane}
BUCKET=${BUCKET:-mediaplane}
API_PORT=${API_PORT:-8080}
STATE=.kind
CONTEXT="kind-$CLUSTER"

log() { printf '\033[1m[kind-up]\033[0m %s\n' "$*"; }
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind-up needs $tool on PATH" >&2; exit 1; }
done
kc() { kubectl --context "$CONTEXT" "$@"; }
mkdir -p "$STATE"

if ! kind get clusters | grep -qx "$CLUSTER"; then
  log "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --config deploy/kind/cluster.yaml --wait 120s
fi

for target in operator api worker; do
  log "building mediaplane/$target:$TAG"
  docker build -f images/Dockerfile --target "$target" -t "mediaplane/$target:$TAG" .
  kind load docker-image --name "$CLUSTER" "mediaplane/$target:$TAG"
done

# S3: credentials generated once and kept in the cluster (and in $STATE/s3.env).
log "SeaweedFS (S3) in namespace mediaplane-s3"
kc apply -f deploy/kind/seaweedfs.yaml >/dev/null
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

node_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$CLUSTER-control-plane")
log "installing the chart (S3 public endpoint http://$node_ip:30333)"
# Helm installs crds/ only on first install; apply them so a re-run upgrades them too.
kc apply --server-side --force-conflicts -f charts/mediaplane/crds/ >/dev/null
helm --kube-context "$CONTEXT" upgrade --install mediaplane charts/mediaplane \
  --namespace "$NAMESPACE" --wait --timeout 5m \
  --set image.tag="$TAG" \
  --set operator.replicaCount=1 \
  --set s3.endpoint=http://seaweedfs.mediaplane-s3.svc:8333 \
  --set s3.publicEndpoint="http://$node_ip:30333" \
  --set s3.bucket="$BUCKET" \
  --set s3.credentials.existingSecret=mediaplane-s3 \
  --set api.publicUrl="http://127.0.0.1:$API_PORT"
helm --kube-context "$CONTEXT" test mediaplane --namespace "$NAMESPACE" --timeout 2m

if [ -f "$STATE/port-forward.pid" ] && kill -0 "$(cat "$STATE/port-forward.pid")" 2>/dev/null; then
  kill "$(cat "$STATE/port-forward.pid")"
fi
kc -n "$NAMESPACE" port-forward svc/mediaplane-api "$API_PORT:80" > "$STATE/port-forward.log" 2>&1 &
echo $! > "$STATE/port-forward.pid"
for _ in $(seq 30); do
  curl -fsS "http://127.0.0.1:$API_PORT/healthz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$API_PORT/healthz" >/dev/null
log "ready: API on http://127.0.0.1:$API_PORT (port-forward pid $(cat "$STATE/port-forward.pid"))"
log "next: make kind-e2e; stop: kill \$(cat $STATE/port-forward.pid); make kind-down"
