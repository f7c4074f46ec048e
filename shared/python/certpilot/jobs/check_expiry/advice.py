"""What to do about each finding code: the guide's FAQ and DESIGN §6 as one table.

The reports show these words next to each finding. Every `Code` has an entry; a code
added without one fails at import (and in the tests), so no report ever shows a
finding without advice.
"""

from __future__ import annotations

from collections.abc import Mapping

from certpilot.core.findings import Code

WHAT_TO_DO: Mapping[Code, str] = {
    Code.NO_CERTIFICATE: (
        "Configure HTTPS where the traffic goes: OSS certificate hosting for an OSS custom "
        "domain, the CDN console's HTTPS settings for a CDN domain (guide: Enable HTTPS "
        "access). certpilot's enforce-https does it when CAS holds a covering certificate."
    ),
    Code.WRONG_LOCATION: (
        "CDN acceleration is on for this domain: configure the certificate in the CDN "
        "console; certificate hosting in OSS does not apply (FAQ: check the configuration "
        "location)."
    ),
    Code.CERT_EXPIRED: (
        "Renew the certificate and deploy the new one (guide: Update the certificate); "
        "certpilot rolls it out as soon as CAS holds it. Visitors who still see the "
        "warning may need to clear their browser cache."
    ),
    Code.CERT_NOT_YET_VALID: (
        "Deploy a certificate that is valid now, or wait until its start date; check the "
        "clock of whoever issued it."
    ),
    Code.CERT_EXPIRING: (
        "Renew now: the guide renews 30 days before expiry. Issue or upload the renewal "
        "in SSL Certificates Service and certpilot rolls it out; enable certificate "
        "hosting for Alibaba Cloud certificates to renew them automatically."
    ),
    Code.NAME_MISMATCH: (
        "The domain is not among the certificate's domains: configure a certificate "
        "issued for this domain (FAQ: certificate mismatch)."
    ),
    Code.WILDCARD_LEVEL: (
        "A wildcard covers exactly one level (*.example.com covers www.example.com, not "
        "example.com nor cdn.oss.example.com): get a certificate for this name or a "
        "wildcard at its level."
    ),
    Code.CHAIN_INCOMPLETE: (
        "Concatenate the server certificate with the intermediate certificates, leaf "
        "first, into one PEM file and upload it again (FAQ: certificate chain integrity)."
    ),
    Code.CHAIN_ORDER: (
        "Put the chain in order, server certificate first, then the intermediates, and "
        "upload it again."
    ),
    Code.UNTRUSTED_ROOT: (
        "Browsers do not trust the CA at the end of the chain: use a certificate from a "
        "publicly trusted CA, with that CA's intermediates."
    ),
    Code.KEY_MISMATCH: (
        "The private key does not belong to the certificate: upload the key that was "
        "generated with its signing request, or reissue the certificate."
    ),
    Code.NOT_PEM: (
        "CDN accepts PEM only: convert the certificate (DER, PKCS#7 or PKCS#12) to PEM "
        "and upload it again (guide: Certificate Formats)."
    ),
    Code.WEAK_KEY: "Reissue the certificate with an RSA key of 2048 bits or more, or ECDSA P-256.",
    Code.WEAK_SIGNATURE: "Reissue the certificate signed with SHA-256 or stronger.",
    Code.HTTP_NOT_FORCED: (
        "Force HTTPS (guide: Force HTTPS access): OSS: the bucket policy statement that "
        "denies acs:SecureTransport=false; CDN: the HTTP to HTTPS 301 redirect. "
        "certpilot's enforce-https does both once HTTPS is verified."
    ),
    Code.HSTS_MISSING: (
        "Turn on HSTS in the CDN domain's HTTPS settings (guide: Enable HSTS), so that "
        "browsers never try plain HTTP."
    ),
    Code.NO_BACKUP: (
        "Upload a valid certificate for this domain from a second CA to SSL Certificates "
        "Service, so that the domain can fail over when its CA fails (guide: backup "
        "certificate mechanism)."
    ),
    Code.SERVED_MISMATCH: (
        "The edge serves another certificate than the one configured: wait for the change "
        "to take effect (CDN: about a minute); if it stays, deploy the certificate again."
    ),
    Code.CERT_REVOKED: (
        "Its CA revoked the certificate: deploy another one now. certpilot fails over to "
        "a backup from another CA when CAS holds one; otherwise issue a new certificate."
    ),
    Code.FALLBACK_ACTIVE: (
        "An emergency HTTP fallback is in force: fix the certificate problem and restore "
        "HTTPS enforcement before the fallback ends (guide: HTTP fallback policy)."
    ),
    Code.ENFORCEMENT_BLOCKED: (
        "Move the domains or CDN origins named, which still use plain HTTP to this bucket, "
        "to HTTPS; the next sweep then forces HTTPS."
    ),
    Code.POLICY_UNMERGEABLE: (
        "certpilot left the bucket policy as it was: make it valid JSON within OSS's size "
        "limit, or add the statement that denies acs:SecureTransport=false by hand."
    ),
    Code.NOT_JUDGED: (
        "The sweep could not judge this domain (see the run's log): treat it as unknown, "
        "not as healthy; the next sweep tries again."
    ),
}

if set(WHAT_TO_DO) != set(Code):  # pragma: no cover - guards edits of the table above
    raise RuntimeError(f"no advice for {sorted(set(Code) - set(WHAT_TO_DO))}")


def what_to_do(code: Code) -> str:
    """The advice for `code`: one or two sentences for people."""
    return WHAT_TO_DO[code]
