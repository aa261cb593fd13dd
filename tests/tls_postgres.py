"""A PostgreSQL of the tests' own that speaks TLS, as Amazon RDS does: a certificate authority made
here signs its server certificate for `localhost`, so that a client checking it (sslmode
verify-full) with that authority's certificate gets through, and one with another authority's
does not. Its database holds the schema and seed users, like the suite's."""
from __future__ import annotations

import datetime
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devstack import free_port
from devstack.postgres import PG_SYSTEM_USER, LocalPostgres
from lib import db


@dataclass
class Authority:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def authority(common: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .sign(key, hashes.SHA256()))
    return Authority(certificate, key)


def server_certificate(ca: Authority, host: str = "localhost") -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of a server named `host`, signed by `ca`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(_name(host)).issuer_name(ca.certificate.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .sign(ca.key, hashes.SHA256()))
    return (certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


# The embedded wheel's PostgreSQL is built without TLS; Debian's is built with it (.ci/run installs
# it where it is missing).
DEBIAN_POSTGRES = Path("/usr/lib/postgresql")


def postgres_with_tls() -> Path:
    """The programs of a PostgreSQL built with TLS (Debian's, the newest version installed)."""
    found = sorted(DEBIAN_POSTGRES.glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    if not found:
        raise RuntimeError("no PostgreSQL built with TLS: install Debian's postgresql package "
                           "(.ci/run does, as root)")
    return found[-1].parent


class TlsPostgres:
    """Started with `start()`; `url` reaches its cruddur database by the name its certificate has."""

    def __init__(self, data_dir: Path, ca: Authority):
        self.server = LocalPostgres(data_dir, free_port(), bin_dir=postgres_with_tls())
        self.ca = ca

    @property
    def url(self) -> str:
        return f"postgresql://postgres@localhost:{self.server.port}/cruddur"

    def start(self) -> "TlsPostgres":
        self.server.start()
        certificate, key = server_certificate(self.ca)
        data = self.server.data_dir
        (data / "server.crt").write_bytes(certificate)
        (data / "server.key").write_bytes(key)
        os.chmod(data / "server.key", 0o600)
        if os.geteuid() == 0:  # the server runs as its own user, who must own its key
            for name in ("server.crt", "server.key"):
                shutil.chown(data / name, PG_SYSTEM_USER, PG_SYSTEM_USER)
        with psycopg.connect(self.server.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET ssl = on")
            conn.execute("SELECT pg_reload_conf()")
        db.setup_database(self.url + "?sslmode=require")
        return self

    def stop(self) -> None:
        self.server.stop()
