#!/usr/bin/env bash
# `make kind-e2e`: the upload-to-stream flow through the REST API on the kind cluster
# that `make kind-up` made: token → upload URL → POST to S3 → finalize → ready → HLS.
# The real-node tests run it too, on the dev cluster's real node (KUBE_CONTEXT empty: the
# current context of $KUBECONFIG).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER:-mediaplane}
NAMESPACE=${NAMESPACE:-mediaplane}
TENANT=${TENANT:-demo}
API=${API_URL:-http://127.0.0.1:${API_PORT:-8080}}
FILE=${FILE:-examples/media/clip.mp4}
MIME=${MIME:-video/mp4}
TIMEOUT=${TIMEOUT:-300}
PY=${PYTHON:-.venv/bin/python}
MEDIAPLANE=${MEDIAPLANE:-.venv/bin/mediaplane}
CONTEXT=${KUBE_CONTEXT-kind-$CLUSTER}
RELEASE=${RELEASE:-mediaplane}

log() { printf '\033[1m[kind-e2e]\033[0m %s\n' "$*"; }
fail() { printf '\033[1m[kind-e2e] FAILED:\033[0m %s\n' "$*" >&2; exit 1; }
# json EXPR: evaluates EXPR on the JSON document read from stdin (`d`), prints the result.
json() { "$PY" -c 'import json, sys; d = json.load(sys.stdin); v = eval(sys.argv[1]); print(v if isinstance(v, str) else json.dumps(v))' "$1"; }

context_args=()
[ -n "$CONTEXT" ] && context_args=(--context "$CONTEXT")
kc() { kubectl "${context_args[@]}" "$@"; }

log "tenant $TENANT"
kc create namespace "$TENANT" --dry-run=client -o yaml | kc apply -f - >/dev/null
kc label namespace "$TENANT" media.mediaplane.io/tenant=true --overwrite >/dev/null

MEDIAPLANE_API_JWT_SECRET=$(kc -n "$NAMESPACE" get secret "$RELEASE-api-keys" \
  -o jsonpath='{.data.jwt-secret}' | base64 -d)
export MEDIAPLANE_API_JWT_SECRET
TOKEN=$("$MEDIAPLANE" token --tenant "$TENANT" --user kind-e2e)
auth=(-H "Authorization: Bearer $TOKEN")

sha=$(sha256sum "$FILE" | cut -d' ' -f1)
size=$(stat -c %s "$FILE")
log "upload URL for $FILE ($size bytes)"
upload=$(curl -fsS "${auth[@]}" -H 'Content-Type: application/json' -X POST "$API/api/v1/media/upload-url" \
  -d "{\"sha256\": \"$sha\", \"sizeBytes\": $size, \"mime\": \"$MIME\", \"filename\": \"$(basename "$FILE")\"}")
id=$(json 'd["data"]["assetId"]' <<<"$upload")
url=$(json 'd["data"]["uploadUrl"] or ""' <<<"$upload")

if [ -n "$url" ]; then
  log "POST to S3 (presigned policy) as $id"
  form=()
  while IFS= read -r -d '' field; do form+=(--form-string "$field"); done < <(
    json '"".join(f"{k}={v}\0" for k, v in d["data"]["uploadFields"].items())' <<<"$upload" | tr -d '\n')
  headers=$(mktemp)
  trap 'rm -f "$headers"' EXIT
  curl -fsS -o /dev/null -D "$headers" "${form[@]}" -F "file=@$FILE;type=$MIME" "$url"
  etag=$(grep -i '^etag:' "$headers" | cut -d' ' -f2- | tr -d '\r"')
  [ -n "$etag" ] || fail "S3 answered no ETag"
  log "finalize (etag $etag)"
  curl -fsS "${auth[@]}" -H 'Content-Type: application/json' -X POST "$API/api/v1/media/$id/finalize" \
    -d "{\"etag\": \"$etag\"}" >/dev/null
else
  log "$id: already uploaded for this tenant (dedup)"
fi

log "waiting for $id to be ready (up to ${TIMEOUT}s)"
deadline=$((SECONDS + TIMEOUT))
while :; do
  asset=$(curl -fsS "${auth[@]}" "$API/api/v1/media/$id")
  status=$(json 'd["data"]["status"]' <<<"$asset")
  case "$status" in
    ready) break ;;
    quarantined|failed) fail "$id is $status: $asset" ;;
  esac
  [ "$SECONDS" -lt "$deadline" ] || fail "$id still $status after ${TIMEOUT}s"
  sleep 2
done

hls=$(json '(d["data"].get("streams") or {}).get("hls") or ""' <<<"$asset")
[ -n "$hls" ] || fail "no HLS URL in $asset"
log "HLS master: $hls"
master=$(curl -fsS "$hls")
grep -q '^#EXTM3U' <<<"$master" || fail "not an HLS playlist: $master"
rendition=$(grep -v '^#' <<<"$master" | grep -m1 .)
curl -fsS "$rendition" | grep -q '#EXTINF' || fail "rendition playlist has no segments: $rendition"
log "OK: $id is ready and streams ($(grep -c '^#EXT-X-STREAM-INF' <<<"$master") renditions)"
