"""The embedded default job of `mediaplane dev up`: the examples, end to end.

It does what the README's kubectl walk-through does: put each sample file in the bucket,
`kubectl apply` the example manifests, and wait until every asset is Ready, so a new user
sees the whole system work with one command.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from mediaplane.core.states import AssetPhase
from mediaplane.core.storage import Storage

EXAMPLES = ("video.yaml", "image.yaml", "audio.yaml")
MEDIA = {"video.yaml": "clip.mp4", "image.yaml": "image.png", "audio.yaml": "tone.mp3"}


def examples_dir() -> Path | None:
    """The checkout's examples/ (the demo runs from a source tree, not an installed wheel)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "examples"
        if (candidate / "video.yaml").is_file():
            return candidate
    return None


def put_sources(examples: Path, env: Mapping[str, str]) -> list[str]:
    storage = Storage.from_env(env)
    keys = []
    for manifest in EXAMPLES:
        spec = yaml.safe_load((examples / manifest).read_text())["spec"]
        data = (examples / "media" / MEDIA[manifest]).read_bytes()
        storage.client.put_object(Bucket=storage.bucket, Key=spec["source"]["key"], Body=data,
                                  ContentType=spec["mime"])
        keys.append(spec["source"]["key"])
    return keys


def run(env: Mapping[str, str], say: Callable[[str], None] = print,
        timeout: float = 300) -> bool:
    """Runs the demo; True when every example asset became Ready."""
    examples = examples_dir()
    if examples is None:
        say("demo skipped: no examples/ directory next to this installation")
        return True
    kubectl = ["kubectl", "--kubeconfig", env["KUBECONFIG"]]
    full_env = {**env}

    def sh(*args: str) -> str:
        return subprocess.run([*kubectl, *args], check=True, capture_output=True, text=True,
                              env=full_env, timeout=60).stdout

    say("demo: applying examples/namespace.yaml and uploading the sample media")
    sh("apply", "-f", str(examples / "namespace.yaml"))
    for key in put_sources(examples, env):
        say(f"demo:   s3://{env['MEDIAPLANE_S3_BUCKET']}/{key}")
    for manifest in EXAMPLES:
        sh("apply", "-f", str(examples / manifest))
    say("demo: kubectl apply -f examples/{video,image,audio}.yaml; waiting for Ready")
    started = time.monotonic()
    rows: list[list[str]] = []
    while time.monotonic() - started < timeout:
        table = sh("get", "mediaassets", "-n", "demo", "-o",
                   "jsonpath={range .items[*]}{.metadata.name} {.status.phase} "
                   "{.status.variantSummary}{'\\n'}{end}")
        rows = [line.split() for line in table.splitlines() if line.strip()]
        if len(rows) == len(EXAMPLES) and all(_settled(row) for row in rows):
            break
        time.sleep(1)
    say(sh("get", "mediaassets", "-n", "demo", "-o", "wide"))
    ok = len(rows) == len(EXAMPLES) and all(row[1] == AssetPhase.READY for row in rows)
    seconds = time.monotonic() - started
    say(f"demo: {'all assets ready' if ok else 'NOT all assets ready'} after {seconds:.1f}s; "
        "outputs are under tenants/demo/assets/ in the bucket")
    if ok and "MEDIAPLANE_API" in env:
        ok = rest_demo(env, say)
    return ok


def rest_demo(env: Mapping[str, str], say: Callable[[str], None]) -> bool:
    """The same tenant through the REST API: list it, read the video with signed links."""
    import httpx

    from mediaplane.devcluster.tokens import mint_dev_token

    token = mint_dev_token(env["MEDIAPLANE_API_JWT_SECRET"], "demo", "demo-user", 3600)
    headers = {"Authorization": f"Bearer {token}"}
    base = env["MEDIAPLANE_API"]
    listing = httpx.get(f"{base}/api/v1/media", headers=headers, timeout=10).json()
    say(f"demo: GET {base}/api/v1/media as demo-user (token: mediaplane token --tenant demo "
        "--user demo-user):")
    for asset in listing.get("data", []):
        say(f"demo:   {asset['id']} {asset['kind']:<5} {asset['status']}")
    video = next((a for a in listing.get("data", []) if a["kind"] == "video"), None)
    if video is None or not video.get("streams"):
        say("demo: the video has no stream links")
        return False
    master = httpx.get(video["streams"]["hls"], timeout=10)
    say(f"demo: signed HLS link ({master.status_code}, {master.text.count('#EXT-X-STREAM-INF')} "
        f"renditions), play it with: ffplay '{video['streams']['hls']}'")
    player = video.get("player")
    page = httpx.get(player, headers={"Accept": "text/html"}, timeout=10) if player else None
    say(f"demo: watch it in a browser (hls.js; add &engine=dash for dash.js), link valid "
        f"for an hour: {player}")
    return master.status_code == 200 and page is not None and page.status_code == 200


def _settled(row: list[str]) -> bool:
    """name, phase[, done/planned]: finished one way or another; ready means complete."""
    if len(row) < 2 or row[1] not in {p.value for p in AssetPhase if p.settled}:
        return False
    if row[1] != AssetPhase.READY or len(row) < 3:
        return True
    done, _, planned = row[2].partition("/")
    return done == planned
