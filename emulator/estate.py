"""Estates: a whole account (certificates, buckets, custom domains, CDN domains) from JSON.

`load_estate(state, pki, data)` validates the document completely before it changes
anything, issues the certificates from the test PKI, and creates every resource
directly in `State` (settled at once: the edge serves it immediately). The format is
documented in emulator/README.md, "Estate file format"; `DEMO_ESTATE` holds an estate
in which every finding code of DESIGN §6 occurs, `MINIMAL_ESTATE` a small healthy one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import mimetypes
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from emulator.cdn import CDN_TYPES, CNAME_SUFFIX, FEATURES, MUTEX, SCOPES, SOURCE_TYPES
from emulator.certinfo import bound_from_cas, make_cas_certificate
from emulator.core import ServiceError
from emulator.pki import CA_NAMES, CHAIN_SHAPES, KEY_TYPES, SIGNATURE_HASHES, PkiError, TestPki
from emulator.pki import to_a_label as _a_label
from emulator.policy import PolicyError, https_only_policy, parse_policy
from emulator.propagation import Propagating
from emulator.state import (
    DEFAULT_REGION,
    BoundCertificate,
    Bucket,
    CasCertificate,
    CdnConfig,
    CdnDomain,
    Cname,
    State,
    StoredObject,
)

ESTATES_DIR = Path(__file__).parent / "estates"
DEMO_ESTATE = ESTATES_DIR / "demo.json"
MINIMAL_ESTATE = ESTATES_DIR / "minimal.json"
FILE_CONTENTS = ("chain", "leaf", "key", "der", "p7b", "pfx")

_RELATIVE = re.compile(r"^([+-])(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2,}(?:-[a-z0-9]+)+$")
_NOTE = "note"  # free text allowed in every object (JSON has no comments)
_ARG_CHOICES = {
    "enable": ("on", "off"),
    "enabled": ("on", "off"),
    "https_rewrite": ("301", "308"),
    "http_rewrite": ("301", "308"),
    "scheme_origin": ("http", "https", "follow"),
}


class EstateError(ValueError):
    """A bad estate document; the message starts with the offending field's path."""


@dataclass
class _Cert:
    name: str
    chain_pem: str
    key_pem: str
    cas: CasCertificate | None


@dataclass
class _Plan:
    certs: dict[str, _Cert] = field(default_factory=dict)
    buckets: list[Bucket] = field(default_factory=list)
    cdn_domains: list[CdnDomain] = field(default_factory=list)
    files: list[tuple[PurePosixPath, bytes]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def read_estate(path: Path) -> dict[str, Any]:
    """The estate document in `path`. Raises EstateError for unreadable or non-JSON files."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise EstateError(f"{path}: cannot read: {err.strerror}") from None
    except ValueError as err:
        raise EstateError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise EstateError(f"{path}: an estate is a JSON object")
    return data


def load_estate(
    state: State, pki: TestPki, data: dict[str, Any], *, files_dir: Path | None = None
) -> dict[str, int]:
    """Create the estate described by `data` in `state`, issuing certificates from `pki`.

    Files of the `files` section are written under `files_dir` (default
    `<pki.directory>/estate-files`). Nothing in `state` changes unless the whole
    document is valid. Returns the CAS id of each certificate by its estate name.
    Raises EstateError naming the offending field, e.g. `buckets[0].cnames[2].domain`.
    """
    if pki is None:
        raise EstateError("estate: loading an estate needs the emulator's test PKI")
    root = _object(
        data,
        "estate",
        {"description", "settings", "certificates", "buckets", "cdn_domains", "files"},
    )
    now = state.now()
    plan = _Plan()
    plan.settings = _settings(root.get("settings", {}))
    with state.lock:
        for index, item in enumerate(_list(root.get("certificates", []), "certificates")):
            cert = _certificate(state, pki, item, f"certificates[{index}]", now, plan)
            plan.certs[cert.name] = cert
        taken_domains = {d for b in state.buckets.values() for d in b.cnames}
        for index, item in enumerate(_list(root.get("buckets", []), "buckets")):
            plan.buckets.append(_bucket(state, item, f"buckets[{index}]", now, plan, taken_domains))
        for index, item in enumerate(_list(root.get("cdn_domains", []), "cdn_domains")):
            plan.cdn_domains.append(_cdn_domain(state, item, f"cdn_domains[{index}]", now, plan))
        for index, item in enumerate(_list(root.get("files", []), "files")):
            plan.files.append(_file(item, f"files[{index}]", plan))
        _apply(state, plan)
    _write_files(plan.files, files_dir or pki.directory / "estate-files")
    return {name: c.cas.id for name, c in plan.certs.items() if c.cas is not None}


def _apply(state: State, plan: _Plan) -> None:
    if "propagation_delay" in plan.settings:
        state.propagation_delay = plan.settings["propagation_delay"]
    if "verify_domain_ownership" in plan.settings:
        state.verify_domain_ownership = plan.settings["verify_domain_ownership"]
    for cert in plan.certs.values():
        if cert.cas is not None:
            state.certificates[cert.cas.id] = cert.cas
    for bucket in plan.buckets:
        state.buckets[bucket.name] = bucket
    for domain in plan.cdn_domains:
        state.cdn_domains[domain.name] = domain


def _write_files(files: list[tuple[PurePosixPath, bytes]], directory: Path) -> None:
    for relative, content in files:
        target = directory.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        if relative.suffix in (".key", ".pfx", ".p12"):
            target.chmod(0o600)


# --------------------------------------------------------------------------- sections


def _settings(value: Any) -> dict[str, Any]:
    where = "settings"
    item = _object(value, where, {"propagation_delay", "verify_domain_ownership"})
    out: dict[str, Any] = {}
    if "propagation_delay" in item:
        delay = item["propagation_delay"]
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise EstateError(f"{where}.propagation_delay: expected seconds >= 0, got {delay!r}")
        out["propagation_delay"] = float(delay)
    if "verify_domain_ownership" in item:
        out["verify_domain_ownership"] = _bool(
            item["verify_domain_ownership"], f"{where}.verify_domain_ownership"
        )
    return out


def _certificate(
    state: State, pki: TestPki, value: Any, where: str, now: float, plan: _Plan
) -> _Cert:
    item = _object(
        value,
        where,
        {
            "name",
            "sans",
            "common_name",
            "ca",
            "days",
            "not_before",
            "not_after",
            "key_type",
            "signature_hash",
            "chain",
            "source",
            "revoked",
            "cas",
        },
        required=("name", "sans"),
    )
    name = _str(item["name"], f"{where}.name")
    if len(name) > 64:
        raise EstateError(f"{where}.name: at most 64 characters (CAS limit), got {len(name)}")
    if name in plan.certs:
        raise EstateError(f"{where}.name: duplicate certificate name {name!r}")
    sans = [
        _str(s, f"{where}.sans[{i}]") for i, s in enumerate(_list(item["sans"], f"{where}.sans"))
    ]
    if not sans:
        raise EstateError(f"{where}.sans: at least one name is needed")
    ca = _choice(item.get("ca", "one"), f"{where}.ca", CA_NAMES)
    key_type = _choice(item.get("key_type", "ec"), f"{where}.key_type", KEY_TYPES)
    chain = _choice(item.get("chain", "complete"), f"{where}.chain", CHAIN_SHAPES)
    signature_hash = _choice(
        item.get("signature_hash", "sha256"), f"{where}.signature_hash", SIGNATURE_HASHES
    )
    source = _choice(item.get("source", "upload"), f"{where}.source", ("upload", "issued"))
    in_cas = _bool(item.get("cas", True), f"{where}.cas")
    revoked = _bool(item.get("revoked", False), f"{where}.revoked")
    if revoked and not in_cas:
        raise EstateError(f"{where}.revoked: only a certificate held by CAS can be revoked")
    if "days" in item and "not_after" in item:
        raise EstateError(f"{where}: give either days or not_after, not both")
    days = item.get("days", 90)
    if isinstance(days, bool) or not isinstance(days, (int, float)) or days <= 0:
        raise EstateError(f"{where}.days: expected a positive number of days, got {days!r}")
    not_before = (
        _time(item["not_before"], f"{where}.not_before", now) if "not_before" in item else None
    )
    not_after = _time(item["not_after"], f"{where}.not_after", now) if "not_after" in item else None
    common = item.get("common_name")
    try:
        chain_pem, key_pem = pki.issue(
            sans,
            ca=ca,
            not_before=not_before,
            not_after=not_after,
            days=days,
            key_type=key_type,
            chain=chain,
            signature_hash=signature_hash,
            common_name=_str(common, f"{where}.common_name") if common is not None else None,
        )
    except PkiError as err:
        raise EstateError(f"{where}: {err}") from None
    cas = None
    if in_cas:
        try:
            cas = make_cas_certificate(
                state, name=name, cert_pem=chain_pem, key_pem=key_pem, source=source
            )
        except ServiceError as err:
            raise EstateError(f"{where}: CAS refuses it: {err.code}: {err.message}") from None
        cas.revoked = revoked
        cas.created_ms = int(now * 1000)
    return _Cert(name, chain_pem, key_pem, cas)


def _bucket(
    state: State, value: Any, where: str, now: float, plan: _Plan, taken: set[str]
) -> Bucket:
    item = _object(
        value,
        where,
        {"name", "region", "acl", "storage_class", "objects", "policy", "https_only", "cnames"},
        required=("name",),
    )
    name = _str(item["name"], f"{where}.name")
    if not _BUCKET.match(name) or "--" in name:
        raise EstateError(
            f"{where}.name: {name!r} is not a valid bucket name (3-63 characters: lower-case "
            "letters, digits and single hyphens, starting and ending with a letter or digit)"
        )
    if name in state.buckets or any(b.name == name for b in plan.buckets):
        raise EstateError(f"{where}.name: bucket {name!r} already exists")
    region = _str(item.get("region", DEFAULT_REGION), f"{where}.region")
    if not _REGION.match(region):
        raise EstateError(f"{where}.region: {region!r} is not a region id like 'cn-hangzhou'")
    acl = _choice(
        item.get("acl", "private"), f"{where}.acl", ("private", "public-read", "public-read-write")
    )
    storage_class = _choice(
        item.get("storage_class", "Standard"),
        f"{where}.storage_class",
        ("Standard", "IA", "Archive", "ColdArchive"),
    )
    bucket = Bucket(name, region, now, state.account_id, storage_class=storage_class, acl=acl)
    for key, text in _object(item.get("objects", {}), f"{where}.objects", None).items():
        if not key or key.startswith("/"):
            raise EstateError(f"{where}.objects: invalid object key {key!r}")
        body = _str(text, f"{where}.objects[{key!r}]", allow_empty=True).encode("utf-8")
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        digest = hashlib.md5(body, usedforsecurity=False).hexdigest().upper()
        bucket.objects[key] = StoredObject(body, content_type, now, f'"{digest}"')
    if "policy" in item and "https_only" in item:
        raise EstateError(f"{where}: give either policy or https_only, not both")
    policy: str | None = None
    if _bool(item.get("https_only", False), f"{where}.https_only"):
        policy = https_only_policy(name)
    elif "policy" in item:
        raw = item["policy"]
        policy = raw if isinstance(raw, str) else json.dumps(raw)
        try:
            parse_policy(policy)
        except PolicyError as err:
            raise EstateError(f"{where}.policy: {err}") from None
    bucket.policy = Propagating(policy)
    for index, entry in enumerate(_list(item.get("cnames", []), f"{where}.cnames")):
        cname = _cname(entry, f"{where}.cnames[{index}]", name, now, plan, taken)
        bucket.cnames[cname.domain] = cname
    return bucket


def _cname(value: Any, where: str, bucket: str, now: float, plan: _Plan, taken: set[str]) -> Cname:
    item = _object(
        value, where, {"domain", "certificate", "edge_certificate", "status"}, required=("domain",)
    )
    domain = _domain(item["domain"], f"{where}.domain", wildcard=False)
    if domain in taken:
        raise EstateError(f"{where}.domain: {domain} is already bound to a bucket")
    taken.add(domain)
    status = _choice(item.get("status", "Enabled"), f"{where}.status", ("Enabled", "Disabled"))
    bound = _binding(item.get("certificate"), f"{where}.certificate", "CAS", "Upload", now, plan)
    cname = Cname(domain, bucket, status=status, last_modified=now)
    cname.certificate = _propagating(item, where, bound, "CAS", "Upload", now, plan)
    return cname


def _cdn_domain(state: State, value: Any, where: str, now: float, plan: _Plan) -> CdnDomain:
    item = _object(
        value,
        where,
        {
            "name",
            "origin",
            "sources",
            "cdn_type",
            "scope",
            "status",
            "certificate",
            "edge_certificate",
            "configs",
        },
        required=("name",),
    )
    name = _domain(item["name"], f"{where}.name", wildcard=True)
    if name in state.cdn_domains or any(d.name == name for d in plan.cdn_domains):
        raise EstateError(f"{where}.name: CDN domain {name} already exists")
    if ("origin" in item) == ("sources" in item):
        raise EstateError(f"{where}: give exactly one of origin (a bucket name) or sources")
    if "origin" in item:
        origin = _str(item["origin"], f"{where}.origin")
        bucket = state.buckets.get(origin) or next(
            (b for b in plan.buckets if b.name == origin), None
        )
        if bucket is None:
            known = sorted([*state.buckets, *(b.name for b in plan.buckets)])
            raise EstateError(
                f"{where}.origin: no bucket named {origin!r} (known: {_names(known)})"
            )
        sources = [
            {
                "type": "oss",
                "content": bucket.bucket_domain,
                "port": 80,
                "priority": "20",
                "weight": "10",
            }
        ]
    else:
        sources = [
            _source(s, f"{where}.sources[{i}]")
            for i, s in enumerate(_list(item["sources"], f"{where}.sources"))
        ]
        if not sources:
            raise EstateError(f"{where}.sources: at least one source is needed")
    cdn_type = _choice(item.get("cdn_type", "web"), f"{where}.cdn_type", CDN_TYPES)
    scope = _choice(item.get("scope", "domestic"), f"{where}.scope", SCOPES)
    status = _choice(item.get("status", "online"), f"{where}.status", ("online", "offline"))
    configs = _configs(state, item.get("configs", {}), f"{where}.configs")
    bound = _binding(item.get("certificate"), f"{where}.certificate", "cas", "upload", now, plan)
    cname_host = "all" + name.lstrip("*") if name.startswith((".", "*.")) else name
    domain = CdnDomain(
        name=name,
        cdn_type=cdn_type,
        sources=sources,
        cname=f"{cname_host}.{CNAME_SUFFIX}",
        created=now,
        scope=scope,
        status=Propagating(status),
        configs=Propagating(configs),
        modified=now,
    )
    domain.ssl = _propagating(item, where, bound, "cas", "upload", now, plan)
    return domain


def _source(value: Any, where: str) -> dict[str, Any]:
    item = _object(
        value,
        where,
        {"type", "content", "port", "priority", "weight"},
        required=("type", "content"),
    )
    kind = _choice(item["type"], f"{where}.type", SOURCE_TYPES)
    content = _str(item["content"], f"{where}.content")
    port = item.get("port", 80)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise EstateError(f"{where}.port: expected a port number, got {port!r}")
    out: dict[str, Any] = {"type": kind, "content": content, "port": port}
    for key, default in (("priority", "20"), ("weight", "10")):
        raw = item.get(key, default)
        if isinstance(raw, bool) or not str(raw).isdigit():
            raise EstateError(f"{where}.{key}: expected a number, got {raw!r}")
        out[key] = str(int(raw))
    return out


def _configs(state: State, value: Any, where: str) -> tuple[CdnConfig, ...]:
    item = _object(value, where, None)
    out = []
    for function, raw_args in item.items():
        feature = FEATURES.get(function)
        if feature is None:
            raise EstateError(
                f"{where}: unknown CDN function {function!r} (known: {_names(sorted(FEATURES))})"
            )
        other = MUTEX.get(function)
        if other is not None and other in item:
            raise EstateError(f"{where}: {function} and {other} exclude each other")
        known = set(feature.required) | set(feature.optional)
        args = _object(raw_args, f"{where}.{function}", known)
        missing = [a for a in feature.required if a not in args]
        if missing:
            raise EstateError(f"{where}.{function}: missing argument {', '.join(missing)}")
        pairs = tuple(
            (arg, _arg_text(value, f"{where}.{function}.{arg}")) for arg, value in args.items()
        )
        for arg, text in pairs:
            choices = _ARG_CHOICES.get(arg)
            if choices is not None and text not in choices:
                raise EstateError(
                    f"{where}.{function}.{arg}: expected one of {_names(list(choices))}, "
                    f"got {text!r}"
                )
        out.append(CdnConfig(state.next_config_id(), function, pairs))
    return tuple(out)


def _arg_text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise EstateError(f"{where}: expected a string, number or boolean, got {value!r}")


def _file(value: Any, where: str, plan: _Plan) -> tuple[PurePosixPath, bytes]:
    item = _object(
        value, where, {"path", "certificate", "content"}, required=("path", "certificate")
    )
    raw_path = _str(item["path"], f"{where}.path")
    path = PurePosixPath(raw_path)
    if path.is_absolute() or ".." in path.parts or raw_path.endswith("/"):
        raise EstateError(f"{where}.path: {raw_path!r} must be a relative file path without '..'")
    cert = _cert_ref(item["certificate"], f"{where}.certificate", plan)
    content = _choice(item.get("content", "chain"), f"{where}.content", FILE_CONTENTS)
    return path, _render(cert, content)


def _render(cert: _Cert, content: str) -> bytes:
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


# --------------------------------------------------------------------------- bindings


def _cert_ref(value: Any, where: str, plan: _Plan) -> _Cert:
    name = _str(value, where)
    cert = plan.certs.get(name)
    if cert is None:
        raise EstateError(
            f"{where}: no certificate named {name!r} (known: {_names(list(plan.certs))})"
        )
    return cert


def _binding(
    value: Any, where: str, cas_type: str, upload_type: str, now: float, plan: _Plan
) -> BoundCertificate | None:
    if value is None:
        return None
    cert = _cert_ref(value, where, plan)
    if cert.cas is not None:
        return bound_from_cas(cert.cas, cas_type, bound_at=now)
    return BoundCertificate(
        cert_type=upload_type,
        cert_id=None,
        cert_region="",
        cert_name=cert.name,
        cert_pem=cert.chain_pem,
        key_pem=cert.key_pem,
        bound_at=now,
    )


def _propagating(
    item: dict[str, Any],
    where: str,
    configured: BoundCertificate | None,
    cas_type: str,
    upload_type: str,
    now: float,
    plan: _Plan,
) -> Propagating[BoundCertificate | None]:
    """The configured binding, or (with `edge_certificate`) one the edge never reaches.

    An `edge_certificate` keeps the edge serving that certificate (null: none) while
    the control plane reports the configured one: the write is due at +infinity, so
    only the next write to the domain settles it (SERVED_MISMATCH).
    """
    if "edge_certificate" not in item:
        return Propagating(configured)
    served = _binding(
        item["edge_certificate"], f"{where}.edge_certificate", cas_type, upload_type, now, plan
    )
    value: Propagating[BoundCertificate | None] = Propagating(served)
    value.set(configured, now, float("inf"))
    return value


# --------------------------------------------------------------------------- primitives


def _object(
    value: Any, where: str, allowed: set[str] | None, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EstateError(f"{where}: expected an object, got {_kind(value)}")
    if allowed is not None:
        unknown = sorted(k for k in value if k not in allowed and k != _NOTE)
        if unknown:
            raise EstateError(
                f"{where}: unknown key {unknown[0]!r} (known: {_names(sorted(allowed))})"
            )
        value = {k: v for k, v in value.items() if k != _NOTE}
    for key in required:
        if key not in value:
            raise EstateError(f"{where}: missing required key {key!r}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise EstateError(f"{where}: expected a list, got {_kind(value)}")
    return value


def _str(value: Any, where: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise EstateError(f"{where}: expected a string, got {_kind(value)}")
    if not value and not allow_empty:
        raise EstateError(f"{where}: must not be empty")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise EstateError(f"{where}: expected true or false, got {value!r}")
    return value


def _choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise EstateError(f"{where}: expected one of {_names(list(choices))}, got {value!r}")
    return str(value)


def _time(value: Any, where: str, now: float) -> dt.datetime:
    """`now`, a relative time like "-10d" / "+20d" / "+3h" (units s, m, h, d), or ISO 8601."""
    text = _str(value, where).strip()
    base = dt.datetime.fromtimestamp(now, dt.timezone.utc).replace(microsecond=0)
    if text == "now":
        return base
    match = _RELATIVE.match(text)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        seconds = sign * float(match.group(2)) * _UNITS[match.group(3)]
        return base + dt.timedelta(seconds=seconds)
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        raise EstateError(
            f'{where}: expected a relative time like "-10d" or "+20d" (units s, m, h, d), '
            f'"now", or an ISO 8601 time, got {text!r}'
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _domain(value: Any, where: str, *, wildcard: bool) -> str:
    raw = _str(value, where)
    prefix = ""
    if wildcard:
        for marker in ("*.", "."):
            if raw.startswith(marker):
                prefix, raw = marker, raw[len(marker) :]
                break
    try:
        name = _a_label(raw)
    except PkiError:
        name = ""
    labels = name.split(".")
    if len(labels) < 2 or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise EstateError(f"{where}: {value!r} is not a valid domain name")
    return prefix + name


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a number ({value!r})" if isinstance(value, (int, float)) else repr(value)
    )


def _names(items: list[str]) -> str:
    return ", ".join(items) if items else "none"
