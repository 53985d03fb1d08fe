"""server.pki: the broker CA, checked with cryptography's verifier and the openssl CLI."""

from __future__ import annotations

import ipaddress
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from server.pki import (
    AGENT_VALIDITY,
    COLLECTOR_IDENTITY,
    CRL_FILE,
    CertificateAuthority,
    InvalidIdentity,
    write_pem,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create(now=NOW)


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_agent_certificate(ca: CertificateAuthority) -> None:
    issued = ca.issue_agent_certificate("cam-gw-0042", now=NOW)
    cert = issued.certificate
    cert.verify_directly_issued_by(ca.certificate)
    assert cn(cert) == "cam-gw-0042"
    assert usages(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc == NOW + AGENT_VALIDITY
    assert cert.not_valid_before_utc < NOW
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert issued.key is not None
    assert issued.key.public_key() == cert.public_key()


def test_agent_keeps_its_private_key(ca: CertificateAuthority) -> None:
    own = ec.generate_private_key(ec.SECP256R1())
    issued = ca.issue_agent_certificate("agent-7", public_key=own.public_key(), now=NOW)
    assert issued.key is None
    assert issued.certificate.public_key() == own.public_key()
    with pytest.raises(ValueError, match="requester kept it"):
        issued.key_pem()
    with pytest.raises(ValueError, match="P-256"):
        ca.issue_agent_certificate(
            "agent-7", public_key=ec.generate_private_key(ec.SECP384R1()).public_key()
        )


@pytest.mark.parametrize(
    "name", ["", "a/b", "+", "#", "%u", "-lead", "x" * 65, "é", "a b", COLLECTOR_IDENTITY]
)
def test_refuses_identities_the_acl_cannot_carry(ca: CertificateAuthority, name: str) -> None:
    with pytest.raises(InvalidIdentity):
        ca.issue_agent_certificate(name)


def test_server_and_collector_certificates(ca: CertificateAuthority) -> None:
    server = ca.issue_server_certificate(
        ["mqtt.example.net"], [ipaddress.ip_address("192.0.2.7")], now=NOW
    ).certificate
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mqtt.example.net"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.7")]
    assert usages(server) == [ExtendedKeyUsageOID.SERVER_AUTH]
    collector = ca.issue_collector_certificate(now=NOW).certificate
    assert cn(collector) == COLLECTOR_IDENTITY
    assert usages(collector) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(ValueError, match="at least one"):
        ca.issue_server_certificate([], [])


def test_validity_never_outlives_the_ca() -> None:
    short = CertificateAuthority.create(now=NOW, validity=timedelta(days=10))
    cert = short.issue_agent_certificate("a1", now=NOW).certificate
    assert cert.not_valid_after_utc == short.certificate.not_valid_after_utc


def test_time_must_be_aware(ca: CertificateAuthority) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ca.issue_agent_certificate("a1", now=datetime(2026, 1, 1))


def test_files_are_atomic_with_private_keys(tmp_path: Path, ca: CertificateAuthority) -> None:
    ca.save(tmp_path / "pki")
    again = CertificateAuthority.load(tmp_path / "pki")
    assert again.certificate == ca.certificate
    cert_path, key_path = write_pem(ca.issue_agent_certificate("a1"), tmp_path / "pki" / "a1")
    assert key_path is not None
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert_path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "pki" / "ca.key").stat().st_mode) == 0o600
    first = cert_path.read_bytes()
    write_pem(ca.issue_agent_certificate("a1"), tmp_path / "pki" / "a1")  # replaces in place
    assert cert_path.read_bytes() != first
    assert sorted(p.name for p in (tmp_path / "pki").iterdir()) == [
        ".crl.lock",
        "a1.crt",
        "a1.key",
        "ca.crt",
        "ca.key",
        "crl.pem",
    ]
    mismatched = CertificateAuthority.create()
    with pytest.raises(ValueError, match="does not belong"):
        CertificateAuthority(ca.certificate, mismatched.key)


def test_openssl_agrees_on_purposes(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    ca = CertificateAuthority.create()  # valid now, for openssl's clock
    ca.save(tmp_path)
    write_pem(ca.issue_agent_certificate("a1"), tmp_path / "agent")
    write_pem(ca.issue_server_certificate(["localhost"], []), tmp_path / "server")

    def verify(purpose: str, name: str) -> bool:
        args = [openssl, "verify", "-CAfile", str(tmp_path / "ca.crt"), "-purpose", purpose]
        return (
            subprocess.run(
                [*args, str(tmp_path / name)], capture_output=True, check=False
            ).returncode
            == 0
        )

    assert verify("sslclient", "agent.crt")
    assert verify("sslserver", "server.crt")
    assert not verify("sslserver", "agent.crt")
    assert not verify("sslclient", "server.crt")


def test_revocation_list(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(now=NOW)
    ca.save(tmp_path)
    path = tmp_path / CRL_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the broker reads it as its own user

    def crl() -> x509.CertificateRevocationList:
        return x509.load_pem_x509_crl(path.read_bytes())

    def number(c: x509.CertificateRevocationList) -> int:
        return c.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    empty = crl()
    assert (len(empty), number(empty)) == (0, 1)
    assert empty.is_signature_valid(ca.key.public_key())
    assert empty.issuer == ca.certificate.subject
    assert empty.next_update_utc == ca.certificate.not_valid_after_utc  # never stale at a broker
    first = ca.issue_agent_certificate("a1", now=NOW).certificate.serial_number
    second = ca.issue_agent_certificate("a1", now=NOW).certificate.serial_number
    ca.update_crl(tmp_path, [first], now=NOW)
    ca.update_crl(tmp_path, [first, second], now=NOW + timedelta(days=1))
    ca.save(tmp_path)  # keeps the list it finds
    revoked = crl()
    assert number(revoked) == 3
    assert {r.serial_number: r.revocation_date_utc for r in revoked} == {
        first: NOW,
        second: NOW + timedelta(days=1),
    }
    assert revoked.is_signature_valid(ca.key.public_key())
    with pytest.raises(ValueError, match="not a CRL of this CA"):
        CertificateAuthority.create().update_crl(tmp_path, [1])


def test_openssl_refuses_a_revoked_certificate(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    ca = CertificateAuthority.create()  # valid now, for openssl's clock
    ca.save(tmp_path)
    revoked = ca.issue_agent_certificate("a1")
    write_pem(revoked, tmp_path / "revoked")
    write_pem(ca.issue_agent_certificate("a2"), tmp_path / "kept")
    ca.update_crl(tmp_path, [revoked.certificate.serial_number])

    def verify(name: str) -> str:
        args = [openssl, "verify", "-crl_check", "-CRLfile", str(tmp_path / CRL_FILE)]
        args += ["-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / name)]
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
        return "OK" if proc.returncode == 0 else proc.stderr

    assert "certificate revoked" in verify("revoked.crt")
    assert verify("kept.crt") == "OK"
