"""The dev cluster's trust material: a CA, a loopback serving cert, SA keys, an admin token.

Kept in the state dir and reused on the next start, so a kubeconfig copied elsewhere and
service-account tokens stay valid across `dev down` / `dev up`. Admin access is a static
bearer token of a user in `system:masters`: every client (kubectl, kopf, both Python
clients) reads it from a kubeconfig, and it needs no client-cert plumbing.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ADMIN_USER = "mediaplane-admin"
ADMIN_GROUP = "system:masters"
VALIDITY = dt.timedelta(days=3650)
SERVING_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
SERVING_IPS = ("127.0.0.1", "10.0.0.1")


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.dir / "serving.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "serving.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    @property
    def token_file(self) -> Path:
        """kube-apiserver's `--token-auth-file` (CSV: token,user,uid,"groups")."""
        return self.dir / "tokens.csv"

    @property
    def admin_token_path(self) -> Path:
        return self.dir / "admin.token"

    def admin_token(self) -> str:
        return self.admin_token_path.read_text().strip()


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mediaplane dev"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)


def _make_ca(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("mediaplane-dev-ca")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(pki.ca_key, _pem_key(key))
    pki.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load_ca(pki: Pki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{pki.ca_key} is not the EC key this module writes")
    return cert, key


def _issue(pki: Pki, cert_path: Path, key_path: Path, subject: x509.Name, *,
           usages: list[x509.ObjectIdentifier], dns: tuple[str, ...] = (),
           ips: tuple[str, ...] = ()) -> None:
    """A leaf key and certificate signed by the dev CA, written to the two paths."""
    ca_cert, ca_key = _load_ca(pki)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if dns or ips:
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_private(key_path, _pem_key(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _make_serving(pki: Pki) -> None:
    _issue(pki, pki.serving_cert, pki.serving_key, _name("kube-apiserver"),
           usages=[ExtendedKeyUsageOID.SERVER_AUTH], dns=SERVING_DNS, ips=SERVING_IPS)


def _make_sa_keys(pki: Pki) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(pki.sa_key, _pem_key(key))
    pki.sa_pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _make_token(pki: Pki) -> None:
    token = secrets.token_urlsafe(32)
    _write_private(pki.admin_token_path, token.encode() + b"\n")
    _write_private(pki.token_file, f'{token},{ADMIN_USER},{ADMIN_USER},"{ADMIN_GROUP}"\n'.encode())


def ensure_pki(directory: Path) -> Pki:
    """Create whatever is missing under `directory`; keep what exists."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)
    new_ca = not (pki.ca_cert.exists() and pki.ca_key.exists())
    if new_ca:
        _make_ca(pki)
    if new_ca or not (pki.serving_cert.exists() and pki.serving_key.exists()):
        _make_serving(pki)
    if not (pki.sa_key.exists() and pki.sa_pub.exists()):
        _make_sa_keys(pki)
    if not (pki.admin_token_path.exists() and pki.token_file.exists()):
        _make_token(pki)
    return pki


# --- a real node's certificates and identities (`mediaplane dev up --node=containers`) -----


def _leaf_matches(path: Path, dns: tuple[str, ...], ips: tuple[str, ...]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return not dns and not ips and path.exists()
    have_dns = set(sans.get_values_for_type(x509.DNSName))
    have_ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return have_dns == set(dns) and have_ips == set(ips)


def ensure_leaf(pki: Pki, name: str, common_name: str, *, organizations: tuple[str, ...] = (),
                dns: tuple[str, ...] = (), ips: tuple[str, ...] = (),
                server: bool = False, client: bool = False) -> tuple[Path, Path]:
    """`<name>.crt` and `<name>.key` signed by the dev CA, made again when the names it
    must carry changed (a serving cert for a new address)."""
    cert_path, key_path = pki.dir / f"{name}.crt", pki.dir / f"{name}.key"
    if key_path.exists() and _leaf_matches(cert_path, dns, ips):
        return cert_path, key_path
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
        + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    _issue(pki, cert_path, key_path, subject, usages=usages, dns=dns, ips=ips)
    return cert_path, key_path


def ensure_token(pki: Pki, user: str, groups: tuple[str, ...] = ()) -> str:
    """A static bearer token for `user` (kept in `<user>.token`, listed in the API server's
    token file, which it reads at start)."""
    safe = user.replace(":", "-")
    path = pki.dir / f"{safe}.token"
    if path.exists():
        token = path.read_text().strip()
    else:
        token = secrets.token_urlsafe(32)
        _write_private(path, token.encode() + b"\n")
    lines = pki.token_file.read_text().splitlines() if pki.token_file.exists() else []
    line = f'{token},{user},{user},"{",".join(groups)}"' if groups else f"{token},{user},{user}"
    if line not in lines:
        kept = [existing for existing in lines if existing.split(",")[1:2] != [user]]
        _write_private(pki.token_file, ("\n".join([*kept, line]) + "\n").encode())
    return token
