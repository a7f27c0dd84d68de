"""AI generation latency on the dev environment: request → Ready for speech (Piper) and for an
image (a local stand-in of an OpenAI-compatible image service), with the time spent in the
model reported apart (`generation.providerSeconds`, measured by the worker).

Not a test. The image service is tests/support/standins.py, which draws a gradient in a
few hundred milliseconds: the image figures are mediaplane's own overhead (Job start,
storing, probe, image sizes) plus that; a real model adds its own seconds.

    .venv/bin/python -m bench.ai_latency [--runs N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from bench.stats import row
from mediaplane.core.ai import ImageService
from mediaplane.core.names import TENANT_LABEL
from mediaplane.core.tasks import ImageProviderKind
from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.services import ai_catalog_path, start_api, start_operator
from mediaplane.devcluster.tokens import mint_dev_token
from tests.support.api import ApiUser
from tests.support.standins import ImageService as StandIn

TEXT = "Welcome to the evening news. Tonight, a look at the weather across the region."


def generate(user: ApiUser, path: str, body: dict[str, Any]) -> dict[str, float]:
    started = time.monotonic()
    created = user.call("POST", f"/api/v1/media/ai/{path}", expect=202, json=body)["data"]
    while True:
        asset = user.get(created["id"])
        if asset["status"] == "ready":
            return {"ready": time.monotonic() - started,
                    "model": float(asset["generation"]["providerSeconds"])}
        if asset["status"] in ("failed", "quarantined") or time.monotonic() - started > 300:
            raise RuntimeError(f"{created['id']}: {asset}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    service = StandIn().start()
    try:
        with tempfile.TemporaryDirectory(prefix="mediaplane-bench-ai-") as tmp, \
                DevCluster(Path(tmp) / "cluster") as cluster:
            env = cluster.env()
            catalog = ImageService(kind=ImageProviderKind.OPENAI, url=service.url,
                                   models=["stand-in"], sizes=["512x512"])
            ai_catalog_path(env).write_text(json.dumps({"image": catalog.model_dump(
                mode="json", by_alias=True, exclude_none=True)}))
            start_operator(cluster)
            start_api(cluster)
            api = k8s_config.new_client_from_config(config_file=env["KUBECONFIG"])
            k8s.CoreV1Api(api).create_namespace(
                {"metadata": {"name": "bench", "labels": {TENANT_LABEL: "true"}}})
            user = ApiUser(cluster.api_url, "bench", "bench", mint_dev_token(
                env["MEDIAPLANE_API_JWT_SECRET"], "bench", "bench", 3600))
            speech, image = [], []
            for index in range(args.runs + 1):  # the first of each warms caches up
                tag = uuid.uuid4().hex[:6]
                speech.append(generate(user, "generate-audio", {
                    "text": f"{TEXT} Report {index} {tag}.", "voice": "en_US-joe-medium",
                    "language": "en-US", "format": "mp3"}))
                image.append(generate(user, "generate-image", {
                    "prompt": f"a lighthouse at dusk, study {index} {tag}", "size": "small"}))
            speech, image = speech[1:], image[1:]
    finally:
        service.stop()
    print(f"\n{args.runs} runs each, one request at a time; speech: {len(TEXT.split())}+ words "
          "to mp3 (AAC and Opus renditions); image: 512x512 PNG (four image sizes)")
    print(row("speech: request -> ready", [r["ready"] for r in speech]))
    print(row("  of which Piper", [r["model"] for r in speech]))
    print(row("image: request -> ready", [r["ready"] for r in image]))
    print(row("  of which the image service", [r["model"] for r in image]))


if __name__ == "__main__":
    main()
