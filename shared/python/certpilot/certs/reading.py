"""Certificate and key input as bytes: size limits, reading the file, PEM framing, DER
sniffing and format detection.

Structure only: nothing here parses a certificate or imports cryptography.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path

from certpilot.certs.errors import (
    CertificateError,
    EmptyInput,
    InputNotFound,
    InputTooLarge,
    InputUnreadable,
    TruncatedPem,
    UnrecognizedFormat,
)

MAX_INPUT_BYTES = 1024 * 1024


class InputFormat(str, enum.Enum):
    """How the certificates were encoded in the input."""

    PEM = "PEM"
    DER = "DER"
    PKCS7_PEM = "PKCS7-PEM"
    PKCS7_DER = "PKCS7-DER"
    PKCS12 = "PKCS12"

    def __str__(self) -> str:
        return self.value


CERT_LABELS = frozenset({"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"})
PKCS7_LABELS = frozenset({"PKCS7", "PKCS #7 SIGNED DATA", "CMS"})
IGNORED_LABELS = frozenset({"EC PARAMETERS"})  # `openssl ecparam` puts it before EC keys
OTHER_LABELS = {
    "CERTIFICATE REQUEST": "a certificate signing request (CSR)",
    "NEW CERTIFICATE REQUEST": "a certificate signing request (CSR)",
    "PUBLIC KEY": "a public key",
    "RSA PUBLIC KEY": "a public key",
    "X509 CRL": "a certificate revocation list",
}
_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 #]{1,40})-----")
_OID_PKCS7_DATA = bytes.fromhex("06092a864886f70d010701")
_OID_PKCS7_SIGNED = bytes.fromhex("06092a864886f70d010702")


@dataclass(frozen=True)
class PemBlock:
    """One BEGIN/END block of PEM text."""

    label: str
    text: bytes  # the whole block, BEGIN and END lines included
    body: bytes


def pem_blocks(data: bytes) -> list[PemBlock]:
    """Every PEM block of `data`, in order. Raises TruncatedPem for a cut file."""
    blocks: list[PemBlock] = []
    pos = 0
    while (match := _BEGIN.search(data, pos)) is not None:
        label = match.group(1).decode("ascii")
        end_marker = b"-----END " + match.group(1) + b"-----"
        end = data.find(end_marker, match.end())
        next_begin = data.find(b"-----BEGIN ", match.end())
        if end < 0 or 0 <= next_begin < end:
            raise TruncatedPem(f"PEM block {label!r} has no END line: the file looks truncated")
        stop = end + len(end_marker)
        blocks.append(PemBlock(label, data[match.start() : stop], data[match.end() : end]))
        pos = stop
    if data.count(b"-----END ") > len(blocks):
        raise TruncatedPem("a PEM END line has no BEGIN line: the file looks truncated")
    return blocks


def block_der(block: PemBlock, what: type[CertificateError]) -> bytes:
    """The DER bytes inside a PEM block. Raises `what` when it is not base64."""
    body = b"".join(block.body.split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise what(f"PEM block {block.label!r} is not valid base64") from exc


def _der_header(data: bytes, offset: int = 0) -> tuple[int, int, int] | None:
    """(tag, header length, content length) of the DER element at offset, or None."""
    if len(data) < offset + 2:
        return None
    tag, first = data[offset], data[offset + 1]
    if first < 0x80:
        return tag, 2, first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < offset + 2 + count:
        return None
    length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    return tag, 2 + count, length


def der_kind(data: bytes) -> str | None:
    """Sniff DER structure: 'pkcs12', 'pkcs7' or 'sequence' (maybe a cert or key)."""
    outer = _der_header(data)
    if outer is None or outer[0] != 0x30:
        return None
    inner = data[outer[1] :]
    # PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo { OID data|signedData } }
    if inner.startswith(b"\x02\x01\x03\x30"):
        content = _der_header(inner, 3)
        if content is not None:
            oid = inner[3 + content[1] : 3 + content[1] + len(_OID_PKCS7_DATA)]
            if oid in (_OID_PKCS7_DATA, _OID_PKCS7_SIGNED):
                return "pkcs12"
    if inner.startswith(_OID_PKCS7_SIGNED):
        return "pkcs7"
    return "sequence"


def first_der_element(data: bytes) -> bytes:
    """The first DER element of `data` (all of it when there is no valid header)."""
    # OpenSSL's TRUSTED CERTIFICATE is a certificate followed by trust settings.
    header = _der_header(data)
    if header is None:
        return data
    return data[: header[1] + header[2]]


def detect_format(data: bytes) -> InputFormat:
    """Say how `data` encodes certificates, from its structure alone (no full parse).

    Raises EmptyInput, InputTooLarge, TruncatedPem, or UnrecognizedFormat.
    """
    check_size(data)
    if b"-----BEGIN " in data:
        labels = {block.label for block in pem_blocks(data)}
        return InputFormat.PKCS7_PEM if labels & PKCS7_LABELS else InputFormat.PEM
    kind = der_kind(data)
    if kind == "pkcs12":
        return InputFormat.PKCS12
    if kind == "pkcs7":
        return InputFormat.PKCS7_DER
    if kind == "sequence":
        return InputFormat.DER
    raise unrecognized(data)


def check_size(data: bytes, limit: int = MAX_INPUT_BYTES) -> None:
    """Raises InputTooLarge over `limit` bytes, EmptyInput for empty or blank input."""
    if len(data) > limit:
        raise InputTooLarge(f"input is over {limit} bytes; a certificate file is a few KiB")
    if not data.strip():
        raise EmptyInput("input is empty")


def unrecognized(data: bytes) -> UnrecognizedFormat:
    """The UnrecognizedFormat error for `data`, saying whether it looked like text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return UnrecognizedFormat("unrecognized binary data: not DER, PKCS#7 or PKCS#12")
    if text.isprintable() or all(c.isprintable() or c.isspace() for c in text):
        return UnrecognizedFormat("text without a PEM '-----BEGIN' line: not a certificate")
    return UnrecognizedFormat("unrecognized binary data: not DER, PKCS#7 or PKCS#12")


def read_input(path: str | os.PathLike[str], *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """Read a certificate or key file, at most `limit` bytes.

    Raises InputNotFound, InputUnreadable, EmptyInput or InputTooLarge. Messages do
    not repeat the path: callers name the file.
    """
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError as exc:
        raise InputNotFound("no such file") from exc
    except IsADirectoryError as exc:
        raise InputUnreadable("is a directory, not a file") from exc
    except PermissionError as exc:
        raise InputUnreadable("permission denied") from exc
    except OSError as exc:
        raise InputUnreadable(f"cannot be read ({exc.strerror or type(exc).__name__})") from exc
    check_size(data, limit)
    return data
