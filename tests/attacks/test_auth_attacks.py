"""Attacks on authentication and tenancy over HTTP against the real API processes: forged
and confused tokens, replayed stream links, path traversal in every path parameter, and a
JWKS URL aimed at a private address. Each must get the documented 4xx, never a 5xx; each
outcome is counted in the reliability summary."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr, ValidationError

from mediaplane.api.settings import ApiSettings
from mediaplane.core import names
from mediaplane.devcluster.tokens import mint_dev_token
from tests.attacks.conftest import AUDIENCE, ISSUER, IdentityProvider
from tests.support.api import ApiUser, error_code
from tests.support.media import Media
from tests.support.summary import LEDGER

UserFactory = Callable[..., ApiUser]


def refused(name: str, response: httpx.Response, status: int | tuple[int, ...],
            code: str | None = None) -> None:
    """Asserts the documented refusal and records it."""
    wanted = (status,) if isinstance(status, int) else status
    ok = response.status_code in wanted and response.status_code < 500
    if ok and code is not None:
        ok = error_code(response) == code
    LEDGER.attack(name, ok)
    assert ok, f"{name}: {response.status_code} {response.text[:300]}"


class Listener:
    """A loopback TCP listener that counts connections: a target that must see none."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def now() -> int:
    return int(time.time())


# --- tokens -------------------------------------------------------------------------------

# The attacker's guessed secret ("secret") is short on purpose; PyJWT warns about it.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_forged_and_confused_tokens_are_refused(
        rs_api: str, api_url: str, idp: IdentityProvider, jwt_secret: str,
        make_tenant: Callable[..., str], listener: Listener) -> None:
    tenant = make_tenant()
    good = {"sub": "alice", "tenant": tenant, "exp": now() + 600, "iss": ISSUER,
            "aud": AUDIENCE}
    public_pem = idp.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def get(base: str, token: str) -> httpx.Response:
        return httpx.get(f"{base}/api/v1/media", headers={"Authorization": f"Bearer {token}"},
                         timeout=30)

    # The attack API takes the IdP's RS256 tokens: the genuine one works.
    assert get(rs_api, idp.token(good)).status_code == 200
    unsigned = jwt.encode(good, key="", algorithm="none")
    cases: dict[str, tuple[str, str]] = {
        "alg none (RS256 API)": (rs_api, unsigned),
        "alg none (HS256 API)": (api_url, jwt.encode(
            {k: v for k, v in good.items() if k != "iss"}, key="", algorithm="none")),
        "alg none with a capitalised name": (rs_api, unsigned.replace(
            unsigned.split(".")[0], jwt.utils.base64url_encode(
                json.dumps({"alg": "None", "typ": "JWT"}).encode()).decode())),
        # HS/RS confusion: the IdP's public key used as an HMAC secret.
        "HS256 signed with the RS256 public key": (rs_api, _hs256(good, public_pem)),
        "RS256 by another key under the IdP's kid": (rs_api, jwt.encode(
            good, stranger, algorithm="RS256", headers={"kid": idp.kid})),
        "RS256 with a jku header to a loopback JWKS": (rs_api, jwt.encode(
            good, stranger, algorithm="RS256",
            headers={"kid": "attacker", "jku": f"http://127.0.0.1:{listener.port}/jwks"})),
        "RS256 with an x5u header to a loopback certificate": (rs_api, jwt.encode(
            good, stranger, algorithm="RS256",
            headers={"kid": idp.kid, "x5u": f"http://127.0.0.1:{listener.port}/cert"})),
        "expired": (rs_api, idp.token({**good, "exp": now() - 3600})),
        "not yet valid (nbf in an hour)": (rs_api, idp.token({**good, "nbf": now() + 3600})),
        "issued in the future (iat in an hour)": (rs_api, idp.token({**good,
                                                                      "iat": now() + 3600})),
        "without exp": (rs_api, idp.token({k: v for k, v in good.items() if k != "exp"})),
        "wrong issuer": (rs_api, idp.token({**good, "iss": "https://evil.test"})),
        "wrong audience": (rs_api, idp.token({**good, "aud": "another-service"})),
        "no audience": (rs_api, idp.token({k: v for k, v in good.items() if k != "aud"})),
        "HS256 with a guessed secret": (api_url, mint_dev_token("secret", tenant, "a", 600)),
        "tenant claim that is not a namespace name": (api_url, mint_dev_token(
            jwt_secret, "../kube-system", "alice", 600)),
        "tenant claim as a list": (api_url, jwt.encode({**good, "tenant": [tenant]},
                                                       jwt_secret, algorithm="HS256")),
        "empty sub": (api_url, jwt.encode({**good, "sub": ""}, jwt_secret,
                                          algorithm="HS256")),
        "truncated signature": (api_url, mint_dev_token(jwt_secret, tenant, "a", 600)[:-8]),
    }
    for name, (base, token) in cases.items():
        refused(name, get(base, token), 401, "auth.unauthenticated")
    assert listener.connections == 0, "no key was fetched from a URL a token named"

    for name, claimed in {"a namespace that is not a tenant": "kube-system",
                          "a tenant that does not exist": "no-such-tenant-here"}.items():
        refused(name, get(api_url, mint_dev_token(jwt_secret, claimed, "alice", 600)), 403,
                "auth.forbidden")

    # An oversize claim set: refused by the server's header limit or the verifier, not 5xx.
    huge = jwt.encode({**good, "pad": "x" * 200_000}, jwt_secret, algorithm="HS256")
    refused("oversize claim set (200 kB)", get(api_url, huge), (400, 401, 413, 431))
    large = jwt.encode({**good, "iss": "https://evil.test", "roles": ["r" * 64] * 100},
                       jwt_secret, algorithm="HS256")
    refused("large claim set with the wrong issuer (HS256)", get(rs_api, large), 401)


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 token over `secret`, built by hand: PyJWT itself refuses to use a PEM
    public key as an HMAC secret (the same confusion it guards against)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


# --- stream links ---------------------------------------------------------------------------

@pytest.fixture
def playable(make_tenant: Callable[..., str], make_user: UserFactory,
             audio: Media) -> tuple[ApiUser, ApiUser, str, str]:
    """Alice with a playable asset and another asset; Bob in the same tenant."""
    tenant = make_tenant()
    alice, bob = make_user(tenant, "alice"), make_user(tenant, "bob")
    first = alice.upload(audio)
    alice.wait_status(first, "ready")
    second = names.new_asset_id()
    return alice, bob, first, second


def _with_path(url: str, old: str, new: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.replace(old, new)))


def test_stream_links_replayed_elsewhere_are_refused(
        playable: tuple[ApiUser, ApiUser, str, str], stream_key: str,
        make_tenant: Callable[..., str], make_user: UserFactory, audio: Media) -> None:
    alice, bob, asset_id, other_id = playable
    link = alice.get(asset_id)["streams"]["hls"]
    assert httpx.get(link, timeout=30).status_code == 200
    token = dict(p.split("=", 1) for p in urlsplit(link).query.split("&"))["token"]

    # Another tenant's asset of the same bytes (same user name, another tenant).
    eve = make_user(make_tenant(), "alice")
    theirs = eve.upload(audio)
    cases = {
        "stream link replayed on another asset id": _with_path(link, asset_id, other_id),
        "stream link replayed on another tenant's asset": _with_path(link, asset_id, theirs),
        "stream link replayed on the DASH route of another asset": _with_path(
            link.replace("/hls/all/index.m3u8", "/dash/all.mpd"), asset_id, theirs),
        "stream link with its token tampered": link.replace(token, token[:-4] + "AAAA"),
        "stream link without its token": link.split("?")[0],
    }
    for name, url in cases.items():
        refused(name, httpx.get(url, timeout=30), (403, 404))
    refused("stream link replayed by another user (bearer)", httpx.get(
        link, headers={"Authorization": f"Bearer {bob.token}"}, timeout=30), 403,
        "stream.signature.invalid")
    # One rendition's link opens that rendition only.
    variants = {v["name"]: v for v in alice.get(asset_id)["variants"] if v.get("hls")}
    assert len(variants) >= 2, variants
    first, second = sorted(variants)[:2]
    own = variants[first]["hls"]
    assert httpx.get(own, timeout=30).status_code == 200
    refused("a rendition's link replayed on another rendition",
            httpx.get(own.replace(f"/hls/{first}/", f"/hls/{second}/"), timeout=30), 403,
            "stream.signature.invalid")
    refused("a rendition's link replayed on the whole ladder",
            httpx.get(own.replace(f"/hls/{first}/", "/hls/all/"), timeout=30), 403,
            "stream.signature.invalid")
    refused("a rendition's link replayed on the DASH route of another rendition",
            httpx.get(variants[first]["dash"].replace(f"/dash/{first}.mpd",
                                                      f"/dash/{second}.mpd"), timeout=30),
            403, "stream.signature.invalid")
    expired = jwt.encode({"exp": now() - 10}, stream_key, algorithm="HS256")
    refused("stream link with a token of another shape", httpx.get(
        link.replace(token, expired), timeout=30), 403)


# --- path traversal -------------------------------------------------------------------------

HOSTILE_SEGMENTS = {
    "dot-dot": "..",
    "encoded dot-dot": "%2e%2e",
    "dot-dot slash passwd": "..%2F..%2F..%2Fetc%2Fpasswd",
    "encoded slash": "mda_%2F",
    "double-encoded slash": "%252F..%252F",
    "backslash": "..%5C..%5Cwindows",
    "NUL": "mda_%00",
    # Unicode look-alikes of a valid id: fullwidth letters, and the dotless i.
    "fullwidth letters": quote("".join(chr(0xFF41 + ord(c) - ord("a")) if c.isalpha()
                                       else c for c in "mda_" + "a" * 26)),
    "dotless i": quote("mda_" + "\u0131" * 26),
    "overlong": "a" * 4096,
    "other tenant's prefix": "..%2F..%2Ft-other%2Fassets",
}


def test_path_traversal_in_every_path_parameter(api_url: str,
                                                make_tenant: Callable[..., str],
                                                make_user: UserFactory,
                                                audio: Media) -> None:
    alice = make_user(make_tenant(), "alice")
    asset_id = alice.upload(audio)
    spec = httpx.get(f"{api_url}/openapi.json", timeout=30).json()
    routes = [(path, method) for path, item in spec["paths"].items() if "{" in path
              for method in item if method in ("get", "post", "patch", "delete")]
    assert len(routes) >= 10, routes
    for path, method in routes:
        for label, segment in HOSTILE_SEGMENTS.items():
            for param in [p.strip("{}") for p in path.split("/") if p.startswith("{")]:
                url = path
                for other in [p.strip("{}") for p in path.split("/") if p.startswith("{")]:
                    value = segment if other == param else (
                        asset_id if other == "asset_id" else "240p" if other == "variant"
                        else "en")
                    url = url.replace("{" + other + "}", value)
                response = alice.client.request(method.upper(), url, json={})
                name = f"{method.upper()} {path}: {param} = {label}"
                ok = 400 <= response.status_code < 500 and "root:" not in response.text
                LEDGER.attack(name, ok)
                assert ok, f"{name}: {response.status_code} {response.text[:200]}"


# --- the JWKS URL ---------------------------------------------------------------------------

PRIVATE_JWKS = [
    "https://10.0.0.1/.well-known/jwks.json",
    "https://192.168.1.10/jwks",
    "https://172.16.0.5/jwks",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/jwks",
    "https://[fd00::1]/jwks",
    "https://0.0.0.0/jwks",
]


def test_a_jwks_url_to_a_private_address_is_refused_before_any_packet(
        listener: Listener, cluster: Any) -> None:
    local = [f"https://127.0.0.1:{listener.port}/jwks", f"https://localhost:{listener.port}/"]
    plain = f"http://127.0.0.1:{listener.port}/jwks"
    for url in [*PRIVATE_JWKS, *local, plain]:
        try:
            ApiSettings(jwt_algorithms="RS256", jwt_jwks_url=url,
                        stream_signing_key=SecretStr("k" * 40))
        except ValidationError as error:
            ok = "JWKS_URL" in str(error)
        else:
            ok = False
        LEDGER.attack(f"JWKS URL {url}", ok)
        assert ok, f"{url} was accepted"

    # The API process itself refuses to start with one, and says why.
    env = {**cluster.env(), "MEDIAPLANE_API_JWT_ALGORITHMS": "RS256",
           "MEDIAPLANE_API_JWT_JWKS_URL": local[0]}
    import os

    done = subprocess.run([sys.executable, "-m", "mediaplane.api", "--host", "127.0.0.1",
                           "--port", "0"], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "non-public address" in done.stderr
    assert listener.connections == 0, "nothing was sent to the private address"
    # An identity provider inside the network is allowed on purpose, and only then.
    ApiSettings(jwt_algorithms="RS256", jwt_jwks_url=local[0], jwt_jwks_allow_private=True,
                stream_signing_key=SecretStr("k" * 40))
    assert listener.connections == 0
