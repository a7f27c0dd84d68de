"""Bearer token verification: HS256 for dev, RS256/ES256 against a JWKS for production."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from mediaplane.api.auth import Principal, TokenVerifier
from mediaplane.api.errors import ApiError
from mediaplane.api.settings import ApiSettings
from mediaplane.devcluster.tokens import mint_dev_token

STREAM_KEY = "k" * 40


def verify(verifier: TokenVerifier, token: str) -> Principal:
    return asyncio.run(verifier.verify(token))


def test_dev_tokens_round_trip_and_bad_ones_are_401() -> None:
    verifier = TokenVerifier(ApiSettings(jwt_secret=SecretStr("s" * 32),
                                         stream_signing_key=SecretStr(STREAM_KEY)))
    good = mint_dev_token("s" * 32, "acme", "alice", 60)
    assert verify(verifier, good) == Principal("acme", "alice")
    now = int(time.time())
    bad_tokens = [
        mint_dev_token("other" * 8, "acme", "alice", 60),  # another secret
        mint_dev_token("s" * 32, "acme", "alice", -120),  # expired beyond leeway
        mint_dev_token("s" * 32, "Not_A_Namespace", "alice", 60),  # hostile tenant claim
        jwt.encode({"sub": "alice", "exp": now + 60}, "s" * 32, algorithm="HS256"),  # no tenant
        jwt.encode({"tenant": "acme", "sub": "a", "exp": now + 60}, "", algorithm="none"),
        "not-a-jwt",
    ]
    for token in bad_tokens:
        with pytest.raises(ApiError) as error:
            verify(verifier, token)
        assert error.value.code == "auth.unauthenticated"


def test_rs256_and_es256_against_a_jwks_file(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": [
        {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())),
         "kid": "r1", "alg": "RS256", "use": "sig"},
        {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())),
         "kid": "e1", "alg": "ES256", "use": "sig"},
    ]}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    settings = ApiSettings(jwt_algorithms="RS256,ES256", jwt_jwks_url=str(path),
                           jwt_issuer="https://idp.test", jwt_audience="mediaplane",
                           stream_signing_key=SecretStr(STREAM_KEY))
    verifier = TokenVerifier(settings)
    claims = {"sub": "alice", "tenant": "acme", "exp": int(time.time()) + 60,
              "iss": "https://idp.test", "aud": "mediaplane"}
    rs = jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "r1"})
    es = jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "e1"})
    assert verify(verifier, rs) == Principal("acme", "alice")
    assert verify(verifier, es) == Principal("acme", "alice")
    wrong_audience = jwt.encode({**claims, "aud": "other"}, rsa_key, algorithm="RS256",
                                headers={"kid": "r1"})
    hs = jwt.encode(claims, "s" * 32, algorithm="HS256")  # algorithm not allowed here
    for token in (wrong_audience, hs):
        with pytest.raises(ApiError):
            verify(verifier, token)
