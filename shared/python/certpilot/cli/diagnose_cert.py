"""`certpilot diagnose-cert`: check a certificate file for a domain, offline.

Prints the parsed certificate, its chain and the findings (JSON by default). Exit 0
when there is no error finding, 1 when there is one, 2 when the input cannot be used
(one line on stderr, never a traceback). cryptography is imported only when the
command runs, so registering it keeps `import certpilot` cheap.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certpilot.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from certpilot.core.findings import Finding, Severity, count_by_severity, has_errors

if TYPE_CHECKING:
    from certpilot.certs import CertBundle, PrivateKey
    from certpilot.certs.trust import TrustStore
    from certpilot.certs.validate import ChainAnalysis

CA_BUNDLE_ENV = "CERTPILOT_CA_BUNDLE"


class _InputProblem(Exception):
    """An input that cannot be used; the message is the one line for stderr."""


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def register(subparsers: Any) -> None:
    """Add the `diagnose-cert` sub-command to the CLI."""
    parser = subparsers.add_parser(
        "diagnose-cert",
        help="check a certificate file for a domain (dates, names, chain, key, format)",
        description="Check a certificate for a domain, offline. Exit 0: no error finding;"
        " 1: an error finding; 2: the input cannot be used.",
    )
    parser.add_argument("--domain", required=True, help="the domain the certificate is for")
    parser.add_argument(
        "--cert", required=True, metavar="FILE", help="PEM, DER, PKCS#7 (.p7b) or PKCS#12 (.pfx)"
    )
    parser.add_argument("--key", metavar="FILE", help="the private key, to check it matches")
    parser.add_argument(
        "--password-env",
        metavar="VAR",
        help="environment variable holding the PKCS#12 / private key password",
    )
    parser.add_argument(
        "--ca-bundle",
        metavar="FILE",
        help=f"trust these roots instead of Mozilla's (default: ${CA_BUNDLE_ENV})",
    )
    parser.add_argument(
        "--convert-pem",
        metavar="OUT",
        help="write the normalized leaf-first PEM chain (certificates only) to OUT",
    )
    parser.add_argument(
        "--renew-days",
        type=_non_negative,
        default=None,
        metavar="N",
        help="report CERT_EXPIRING within N days of notAfter"
        " (default: $CERTPILOT_RENEW_DAYS, else 30)",
    )
    parser.add_argument(
        "--now", type=_instant, metavar="TIME", help="judge at this ISO 8601 time (default: now)"
    )
    parser.add_argument("--format", choices=("json", "text"), default="json")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    try:
        report, findings = _diagnose(args)
    except _InputProblem as problem:
        # File names come from the user and may hold newlines: keep it to one line.
        sys.stderr.write(f"certpilot: error: {' '.join(str(problem).split())}\n")
        return EXIT_USAGE
    except Exception as exc:  # the CLI contract: one line, never a traceback
        sys.stderr.write(f"certpilot: error: unexpected {type(exc).__name__} while diagnosing\n")
        return EXIT_USAGE
    if args.format == "json":
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(_text(report))
    return EXIT_FINDINGS if has_errors(findings) else EXIT_OK


def _password(args: argparse.Namespace) -> bytes | None:
    if not args.password_env:
        return None
    value = os.environ.get(args.password_env)
    if value is None:
        raise _InputProblem(f"--password-env: environment variable {args.password_env} is not set")
    return value.encode("utf-8")


def _diagnose(args: argparse.Namespace) -> tuple[dict[str, Any], list[Finding]]:
    from certpilot.certs import (
        CertificateError,
        describe,
        iso_utc,
        load_bundle_file,
        load_private_key_file,
    )
    from certpilot.certs.validate import analyze_chain, validate
    from certpilot.core.names import InvalidHostname, normalize_hostname

    try:
        domain = normalize_hostname(args.domain)
    except InvalidHostname as exc:
        raise _InputProblem(f"--domain: invalid domain: {exc}") from None
    password = _password(args)
    try:
        bundle = load_bundle_file(args.cert, password)
    except CertificateError as exc:
        raise _InputProblem(f"--cert {args.cert}: {exc}") from None
    key: PrivateKey | None = None
    if args.key:
        try:
            key = load_private_key_file(args.key, password)
        except CertificateError as exc:
            raise _InputProblem(f"--key {args.key}: {exc}") from None
    trust = _trust_store(args)
    renew_days = _renew_days(args)
    now = args.now or datetime.now(timezone.utc)
    try:
        analysis = analyze_chain(bundle, trust)
        findings = validate(bundle, domain, now=now, trust=trust, key=key, renew_days=renew_days)
        certificate = describe(bundle.leaf, now).to_dict()
    except CertificateError as exc:
        raise _InputProblem(f"--cert {args.cert}: {exc}") from None
    written = _convert(args, bundle) if args.convert_pem else None
    report: dict[str, Any] = {
        "domain": domain,
        "ok": not has_errors(findings),
        "evaluated_at": iso_utc(now),
        "certificate": certificate,
        "chain": _chain_summary(bundle, analysis, trust, now),
        "key": None
        if key is None and bundle.key is None
        else {
            "source": "--key" if key is not None else "--cert",
            "matches": not any(f.code.value == "KEY_MISMATCH" for f in findings),
        },
        "findings": [f.to_dict() for f in findings],
        "converted_pem": written,
    }
    return report, findings


def _renew_days(args: argparse.Namespace) -> int:
    """`--renew-days`, else `CERTPILOT_RENEW_DAYS` (validated as the jobs validate it)."""
    from certpilot.core.errors import ConfigError
    from certpilot.core.settings import RENEW_DAYS, Settings

    if args.renew_days is not None:
        return int(args.renew_days)
    try:
        return Settings.from_env({RENEW_DAYS: os.environ.get(RENEW_DAYS, "")}).renew_days
    except ConfigError as exc:
        raise _InputProblem(str(exc)) from None


def _trust_store(args: argparse.Namespace) -> TrustStore:
    from certpilot.certs.trust import TrustStore, TrustStoreError

    path = args.ca_bundle or os.environ.get(CA_BUNDLE_ENV, "").strip() or None
    store = TrustStore.from_file(path) if path else TrustStore.default()
    try:
        store.load()
    except TrustStoreError as exc:
        flag = "--ca-bundle" if args.ca_bundle else CA_BUNDLE_ENV
        raise _InputProblem(f"{flag}: {exc}") from None
    return store


def _convert(args: argparse.Namespace, bundle: CertBundle) -> str:
    target = Path(args.convert_pem)
    temporary = target.with_name(f".{target.name}.certpilot-tmp")
    try:
        temporary.write_text(bundle.to_pem_bundle(), encoding="ascii")
        temporary.replace(target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise _InputProblem(
            f"--convert-pem {target}: cannot write ({exc.strerror or type(exc).__name__})"
        ) from None
    return str(target)


def _chain_summary(
    bundle: CertBundle, analysis: ChainAnalysis, trust: TrustStore, now: datetime
) -> dict[str, Any]:
    from certpilot.certs import days_left, fingerprint_sha256, iso_utc

    def entry(role: str, cert: Any) -> dict[str, Any]:
        return {
            "role": role,
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "sha256": fingerprint_sha256(cert),
            "not_after": iso_utc(cert.not_valid_after_utc),
            "days_left": days_left(cert, now),
        }

    certificates = [entry("leaf", bundle.leaf)]
    certificates += [entry("intermediate", c) for c in bundle.intermediates]
    anchor = analysis.anchor
    return {
        "source_format": bundle.source_format.value,
        "length": len(bundle.chain),
        "status": analysis.status.value,
        "order_was_wrong": bundle.order_was_wrong,
        "root_included": bundle.root_included,
        "duplicates_removed": bundle.duplicates_removed,
        "unrelated_certificates": len(bundle.unrelated),
        "trust_anchor": anchor.subject.rfc4514_string() if anchor is not None else None,
        "trust_store": trust.description,
        "certificates": certificates,
    }


def _text(report: dict[str, Any]) -> str:
    cert, chain = report["certificate"], report["chain"]
    curve = f" ({cert['curve']})" if cert["curve"] else ""
    key = f"{cert['key_type']} {cert['key_size']}{curve}"
    lines = [
        f"Certificate for {report['domain']} (judged at {report['evaluated_at']})",
        f"  subject      {cert['subject']}",
        f"  names        {', '.join(cert['sans']) or '(no DNS subjectAltName)'}",
        f"  issuer       {cert['issuer']}",
        f"  serial       {cert['serial']}",
        f"  sha256       {cert['sha256']}",
        f"  valid        {cert['not_before']} to {cert['not_after']}"
        f" ({cert['days_left']} days left)",
        f"  key          {key}, signature {cert['signature_hash'] or 'intrinsic'}",
        "",
        f"Chain: {chain['length']} certificate(s) from {chain['source_format']},"
        f" {chain['status'].replace('_', ' ')}"
        + (f" via {chain['trust_anchor']}" if chain["trust_anchor"] else ""),
    ]
    for number, entry in enumerate(chain["certificates"], start=1):
        lines.append(f"  {number}. {entry['subject']}  <- {entry['issuer']}")
    lines.append(f"  trust store: {chain['trust_store']}")
    lines.append("")
    findings = [Finding.from_dict(f) for f in report["findings"]]
    if findings:
        lines.append("Findings:")
        for f in findings:
            browser = f"  [{f.browser_error}]" if f.browser_error else ""
            lines.append(f"  {f.severity.value.upper():<8}{f.code.value}: {f.message}{browser}")
    else:
        lines.append("Findings: none")
    counts = count_by_severity(findings)
    verdict = "OK" if report["ok"] else "NOT OK"
    lines.append(
        f"Result: {verdict} ({counts[Severity.ERROR]} error(s), {counts[Severity.WARNING]}"
        f" warning(s), {counts[Severity.INFO]} info)"
    )
    if report["converted_pem"]:
        lines.append(f"Wrote the leaf-first PEM chain to {report['converted_pem']}")
    return "\n".join(lines) + "\n"
