"""The `files` section of an estate: certificate material written to disk (PEM, DER,
PKCS#7, PKCS#12), as a customer would hold it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from emulator.estate.bindings import cert_ref
from emulator.estate.fields import EstateError, as_choice, as_object, as_str
from emulator.estate.plan import Plan, PlannedCert

FILE_CONTENTS = ("chain", "leaf", "key", "der", "p7b", "pfx")


def estate_file(value: Any, where: str, plan: Plan) -> tuple[PurePosixPath, bytes]:
    """The relative path and bytes of one file entry; raises EstateError."""
    item = as_object(
        value, where, {"path", "certificate", "content"}, required=("path", "certificate")
    )
    raw_path = as_str(item["path"], f"{where}.path")
    path = PurePosixPath(raw_path)
    if path.is_absolute() or ".." in path.parts or raw_path.endswith("/"):
        raise EstateError(f"{where}.path: {raw_path!r} must be a relative file path without '..'")
    cert = cert_ref(item["certificate"], f"{where}.certificate", plan)
    content = as_choice(item.get("content", "chain"), f"{where}.content", FILE_CONTENTS)
    return path, _render(cert, content)


def _render(cert: PlannedCert, content: str) -> bytes:
    if content == "chain":
        return cert.chain_pem.encode("ascii")
    if content == "key":
        return cert.key_pem.encode("ascii")
    chain = x509.load_pem_x509_certificates(cert.chain_pem.encode("ascii"))
    key = serialization.load_pem_private_key(cert.key_pem.encode("ascii"), password=None)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    leaf = next(
        c
        for c in chain
        if c.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == spki
    )
    if content == "leaf":
        return leaf.public_bytes(serialization.Encoding.PEM)
    if content == "der":
        return leaf.public_bytes(serialization.Encoding.DER)
    if content == "p7b":
        return pkcs7.serialize_certificates(chain, serialization.Encoding.DER)
    others = [c for c in chain if c is not leaf]
    return pkcs12.serialize_key_and_certificates(
        cert.name.encode("utf-8"),
        key,  # type: ignore[arg-type]
        leaf,
        others or None,
        serialization.NoEncryption(),
    )


def write_files(files: list[tuple[PurePosixPath, bytes]], directory: Path) -> None:
    """Write the planned files under `directory` (keys and PKCS#12 readable by the owner only)."""
    for relative, content in files:
        target = directory.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        if relative.suffix in (".key", ".pfx", ".p12"):
            target.chmod(0o600)
