"""The attack suite's own API: a second API process on the session's cluster that takes
RS256 tokens of a test identity provider (a JWKS file) beside HS256, with an issuer and an
audience, so that algorithm confusion, issuer and audience attacks have something to
confuse. Plus the suite's timing and its line in the reliability summary."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.ports import free_port
from mediaplane.devcluster.processes import wait_until
from tests.conftest import OperatorHandle
from tests.support.summary import SuiteTimer, terminal_summary

ISSUER = "https://idp.mediaplane.test"
AUDIENCE = "mediaplane"
TIMER = SuiteTimer("auth attack suite")


@pytest.fixture(scope="package", autouse=True)
def _timed() -> Iterator[None]:
    TIMER.start()
    yield
    TIMER.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminal_summary(terminalreporter)


@dataclass(frozen=True)
class IdentityProvider:
    key: rsa.RSAPrivateKey
    kid: str
    jwks_path: Path

    def token(self, claims: dict[str, Any], **headers: Any) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256",
                          headers={"kid": self.kid, **headers})


@pytest.fixture(scope="session")
def idp(tmp_path_factory: pytest.TempPathFactory) -> IdentityProvider:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    path = tmp_path_factory.mktemp("idp") / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "idp-1", "alg": "RS256",
                                          "use": "sig"}]}))
    return IdentityProvider(key, "idp-1", path)


@pytest.fixture(scope="session")
def rs_api(cluster: DevCluster, operator: OperatorHandle, idp: IdentityProvider
           ) -> Iterator[str]:
    """An API that accepts RS256 (the test IdP's JWKS) and HS256 (the dev secret)."""
    del operator
    import os

    port = free_port()
    env = {**cluster.env(), "MEDIAPLANE_API_JWT_ALGORITHMS": "RS256,HS256",
           "MEDIAPLANE_API_JWT_JWKS_URL": str(idp.jwks_path),
           "MEDIAPLANE_API_JWT_ISSUER": ISSUER, "MEDIAPLANE_API_JWT_AUDIENCE": AUDIENCE,
           "MEDIAPLANE_API_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    process = cluster.spawn("api-attacks", [sys.executable, "-m", "mediaplane.api", "--host",
                                            "127.0.0.1", "--port", str(port), "--log-level",
                                            "warning"], {**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200,
               what="the attack suite's API", timeout=60, watch=[process])
    yield url
    process.stop()
