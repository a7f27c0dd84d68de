#!/usr/bin/env bash
# Vendors the browser players (hls.js, dash.js, Shaka Player) into the API package, from
# npm, at the versions api/player/package-lock.json pins (`npm ci`: the lock must match).
# The player page and the browser tests load these copies; no page ever loads a CDN.
# Idempotent: a stamp of the lock file skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

SRC=api/player
DEST=api/mediaplane/api/static/vendor
stamp="$DEST/.lock-sha256"
want=$(sha256sum "$SRC/package-lock.json" scripts/vendor-players.sh | sha256sum | cut -d' ' -f1)
if [ -f "$DEST/hls.min.js" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm is required to vendor the players" >&2; exit 1; }
# No install scripts run: the packages ship their builds in dist/.
npm ci --prefix "$SRC" --ignore-scripts --no-audit --no-fund --loglevel=error
modules="$SRC/node_modules"
rm -rf "$DEST"
mkdir -p "$DEST"
cp "$modules/hls.js/dist/hls.min.js" "$DEST/hls.min.js"
cp "$modules/hls.js/LICENSE" "$DEST/hls.js.LICENSE"
cp "$modules/dashjs/dist/modern/umd/dash.all.min.js" "$DEST/dash.all.min.js"
cp "$modules/dashjs/LICENSE.md" "$DEST/dashjs.LICENSE.md"
cp "$modules/shaka-player/dist/shaka-player.compiled.js" "$DEST/shaka-player.compiled.js"
cp "$modules/shaka-player/LICENSE" "$DEST/shaka-player.LICENSE"
node -e '
const fs = require("fs");
const names = ["hls.js", "dashjs", "shaka-player"];
const versions = Object.fromEntries(names.map(
  (n) => [n, JSON.parse(fs.readFileSync(process.argv[1] + "/" + n + "/package.json")).version]));
fs.writeFileSync(process.argv[2], JSON.stringify(versions, null, 2) + "\n");
' "$modules" "$DEST/versions.json"
echo "$want" > "$stamp"
echo "vendored $(tr -d '\n ' < "$DEST/versions.json") into $DEST"
