"""Parse and validate the events that start deploy-cert, at the edge of the system.

Three shapes are accepted (docs/deploy-cert.md "Events"):

- a certpilot CloudEvent that any renewal pipeline can publish with EventBridge
  PutEvents: ``type: "certpilot.certificate.issued"``, ``data: {"certId": ...}``;
- a CAS ActionTrail API-call CloudEvent (``type: "cas:ActionTrail:ApiCall"``) for a call
  that produced a certificate id (UploadUserCertificate, ...): filtered on ``type`` and
  ``data.eventName``, never on ``source`` (its value for ActionTrail events is
  UNCONFIRMED);
- a direct payload ``{"certId": ...}`` (check-expiry, people, `certpilot invoke`).

A certificate id is a CAS id (int, or its decimal string) or a CAS identifier
``"<id>-<region>"``. Anything else raises an `EventError` subclass and nothing runs.
The region an event names (the identifier's suffix, or an ActionTrail record's
``acsRegion``) is kept in `DeployRequest.region`; the engine refuses one that is not
the deployment's CAS region (`ForeignRegion`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from certpilot.core.certref import MAX_CAS_ID, CertRef, is_region
from certpilot.core.errors import ForeignAccount, MalformedEvent, UnsupportedEvent

MAX_EVENT_BYTES = 256 * 1024

CERT_ISSUED_TYPE = "certpilot.certificate.issued"
SHAPE_CLOUDEVENT = "cloudevent"
SHAPE_ACTIONTRAIL = "actiontrail"
SHAPE_DIRECT = "direct"

# ActionTrail names CAS "cas" in event types; "yundun-cert" is its RAM service code.
ACTIONTRAIL_TYPES = frozenset({"cas:actiontrail:apicall", "yundun-cert:actiontrail:apicall"})
# CAS write calls whose record can carry the id of a certificate that now exists.
ACTIONTRAIL_EVENT_NAMES = frozenset(
    {
        "UploadUserCertificate",
        "CreateCertificateRequest",
        "CreateCertificateWithCsrRequest",
        "CreateCertificateForPackageRequest",
        "RenewCertificateOrderForPackageRequest",
        "UploadCertificate",
    }
)
# Where an ActionTrail record names the certificate, most specific first.
_ACTIONTRAIL_ID_KEYS = ("CertId", "CertificateId", "certId", "certificateId", "CertIdentifier")
DIRECT_KEYS = frozenset({"certId", "dryRun", "reason"})

_DECIMAL = re.compile(r"^[1-9][0-9]{0,18}$")


@dataclass(frozen=True)
class DeployRequest:
    """A validated request to roll out one CAS certificate (read-only)."""

    cas_id: int
    # The CAS region the event names (identifier suffix, ActionTrail acsRegion); None
    # when it names none: the deployment's CERTPILOT_CAS_REGION applies.
    region: str | None
    shape: str  # cloudevent | actiontrail | direct
    event_id: str | None = None
    event_type: str | None = None
    source: str | None = None
    account_id: str | None = None
    dry_run: bool = False
    reason: str | None = None
    # Restrict the rollout to these domains (A-labels); empty: every domain it covers.
    # enforce-https gives a newly bound domain its certificate this way.
    only: tuple[str, ...] = ()

    @property
    def identifier(self) -> str:
        """The certificate as the event names it: `<id>-<region>`, or `<id>` alone."""
        return CertRef(self.cas_id, self.region).identifier if self.region else str(self.cas_id)

    def describe(self) -> dict[str, Any]:
        """A loggable summary (no payload echo beyond these fields)."""
        return {
            "certId": self.cas_id,
            "region": self.region,
            "shape": self.shape,
            "eventId": self.event_id,
            "eventType": self.event_type,
            "dryRun": self.dry_run,
            **({"only": list(self.only)} if self.only else {}),
        }


def parse_cert_id(value: object, *, field: str = "certId") -> tuple[int, str | None]:
    """Turn a certificate id into `(cas_id, region)`; region None when it names none.

    Accepts a positive int, its decimal string, or `"<id>-<region>"`.
    Raises `MalformedEvent` for anything else (bools, floats, zero, junk).
    """
    if isinstance(value, bool):
        raise MalformedEvent(f"{field} must be a CAS certificate id, not a boolean")
    if isinstance(value, int):
        if 0 < value <= MAX_CAS_ID:
            return value, None
        raise MalformedEvent(f"{field} must be a positive CAS certificate id")
    if isinstance(value, str):
        text = value.strip()
        if _DECIMAL.match(text):
            return _bounded(int(text), field), None
        ref = CertRef.find(text)
        if ref is not None:
            return ref.cas_id, ref.region
        raise MalformedEvent(
            f"{field} must be a CAS certificate id (123) or identifier (123-cn-hangzhou)"
        )
    raise MalformedEvent(f"{field} must be a CAS certificate id, got {type(value).__name__}")


def _bounded(number: int, field: str) -> int:
    if number > MAX_CAS_ID:
        raise MalformedEvent(f"{field} is out of range")
    return number


def load_event(raw: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    """Decode an FC event (bytes as FC passes it) into a JSON object.

    Raises `MalformedEvent` for oversized, non-UTF-8 or non-JSON input and
    `UnsupportedEvent` for JSON that is not an object (e.g. a batched list).
    """
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise MalformedEvent(f"event must be JSON bytes, got {type(raw).__name__}")
    data = bytes(raw)
    if len(data) > MAX_EVENT_BYTES:
        raise MalformedEvent(
            f"event is {len(data)} bytes, larger than the {MAX_EVENT_BYTES}-byte limit"
        )
    if not data.strip():
        raise MalformedEvent("event is empty")
    try:
        decoded = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedEvent("event is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise MalformedEvent(f"event is not valid JSON ({err.msg} at char {err.pos})") from None
    except RecursionError:
        raise MalformedEvent("event JSON is nested too deeply") from None
    if isinstance(decoded, list):
        raise UnsupportedEvent(
            "batched delivery (a JSON list) is not supported: set the trigger's batch size to 1"
        )
    if not isinstance(decoded, dict):
        raise UnsupportedEvent(f"event must be a JSON object, got {type(decoded).__name__}")
    return decoded


def parse_deploy_event(
    raw: bytes | str | Mapping[str, Any], *, account_id: str | None
) -> DeployRequest:
    """Validate a deploy-cert event and return the typed request.

    `account_id` is the account whose events are accepted (CERTPILOT_ACCOUNT_ID, else
    the FC context's). Events that name an account are accepted only from it; when it
    is unknown such events are refused rather than trusted.
    Raises `MalformedEvent`, `UnsupportedEvent` or `ForeignAccount`.
    """
    event = load_event(raw)
    if "type" in event or "specversion" in event:
        return _parse_cloudevent(event, account_id)
    if "certId" in event:
        return _parse_direct(event)
    raise UnsupportedEvent(
        "not a deploy-cert event: expected a CloudEvent of type "
        f"{CERT_ISSUED_TYPE!r} or cas:ActionTrail:ApiCall, or a payload {{'certId': ...}}"
    )


def _parse_direct(event: Mapping[str, Any]) -> DeployRequest:
    unknown = sorted(set(event) - DIRECT_KEYS)
    if unknown:
        raise MalformedEvent(
            f"unknown field(s) {', '.join(unknown)} in direct payload; allowed: "
            + ", ".join(sorted(DIRECT_KEYS))
        )
    cas_id, region = parse_cert_id(event["certId"])
    dry_run = event.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise MalformedEvent("dryRun must be true or false")
    reason = event.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise MalformedEvent("reason must be a string")
    return DeployRequest(
        cas_id=cas_id,
        region=region,
        shape=SHAPE_DIRECT,
        dry_run=dry_run,
        reason=reason[:200] if reason else None,
    )


def _envelope_str(event: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = event.get(name)
    if value is None:
        if required:
            raise MalformedEvent(f"CloudEvent has no {name!r}")
        return None
    if not isinstance(value, str) or not value.strip():
        raise MalformedEvent(f"CloudEvent {name!r} must be a non-empty string")
    return value.strip()


def json_object(value: Any, what: str) -> Mapping[str, Any]:
    """`value` as a JSON object; a JSON string holding one is decoded (a publisher may
    send CloudEvent `data` as text with datacontenttype application/json).

    Raises:
        MalformedEvent: neither an object nor a string holding one (`what` names it).
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise MalformedEvent(f"{what} is a string but not JSON") from None
    if not isinstance(value, dict):
        raise MalformedEvent(f"{what} must be a JSON object")
    return value


def _event_data(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return json_object(event.get("data"), "CloudEvent 'data'")


def check_account(claimed: str | None, expected: str | None) -> str:
    """The account an event claims, when it is the one whose events are accepted.

    Raises:
        MalformedEvent: the event names no account.
        ForeignAccount: another account, or none configured (account-scoped events are
            then refused rather than trusted).
    """
    if claimed is None:
        raise MalformedEvent("the event names no account (aliyunaccountid)")
    if not expected:
        raise ForeignAccount("cannot accept account-scoped events: CERTPILOT_ACCOUNT_ID is not set")
    if claimed != expected:
        raise ForeignAccount(f"event comes from account {claimed}, not this account")
    return claimed


def _parse_cloudevent(event: Mapping[str, Any], expected_account: str | None) -> DeployRequest:
    specversion = event.get("specversion")
    if specversion is not None and specversion != "1.0":
        raise UnsupportedEvent(f"unsupported CloudEvents specversion {specversion!r}")
    event_type = _envelope_str(event, "type", required=True)
    assert event_type is not None
    event_id = _envelope_str(event, "id", required=False)
    source = _envelope_str(event, "source", required=False)
    claimed = event.get("aliyunaccountid")
    if claimed is not None and not isinstance(claimed, (str, int)):
        raise MalformedEvent("CloudEvent 'aliyunaccountid' must be a string")
    claimed_account = str(claimed) if claimed is not None else None

    if event_type == CERT_ISSUED_TYPE:
        account = check_account(claimed_account, expected_account)
        data = _event_data(event)
        if "certId" not in data:
            raise MalformedEvent(f"{CERT_ISSUED_TYPE} event has no data.certId")
        cas_id, region = parse_cert_id(data["certId"], field="data.certId")
        return DeployRequest(
            cas_id=cas_id,
            region=region,
            shape=SHAPE_CLOUDEVENT,
            event_id=event_id,
            event_type=event_type,
            source=source,
            account_id=account,
        )
    if event_type.lower() in ACTIONTRAIL_TYPES:
        return _parse_actiontrail(
            event, event_type, event_id, source, claimed_account, expected_account
        )
    raise UnsupportedEvent(
        f"event type {event_type!r} is not handled by deploy-cert "
        f"(expected {CERT_ISSUED_TYPE!r} or cas:ActionTrail:ApiCall)"
    )


def _parse_actiontrail(
    event: Mapping[str, Any],
    event_type: str,
    event_id: str | None,
    source: str | None,
    claimed_account: str | None,
    expected_account: str | None,
) -> DeployRequest:
    data = _event_data(event)
    identity = data.get("userIdentity")
    record_account = identity.get("accountId") if isinstance(identity, dict) else None
    if record_account is not None:
        record_account = str(record_account)
    if (
        claimed_account is not None
        and record_account is not None
        and claimed_account != record_account
    ):
        raise ForeignAccount("event envelope and ActionTrail record name different accounts")
    account = check_account(claimed_account or record_account, expected_account)

    name = data.get("eventName")
    if not isinstance(name, str):
        raise MalformedEvent("ActionTrail event has no data.eventName")
    if name not in ACTIONTRAIL_EVENT_NAMES:
        raise UnsupportedEvent(f"CAS call {name!r} does not issue a certificate")
    error_code = data.get("errorCode")
    if error_code:
        raise UnsupportedEvent(f"CAS call {name} failed ({error_code}): nothing was issued")
    called_in = _acs_region(data)
    for part in ("responseElements", "requestParameters"):
        section = record_section(data, part)
        for key in _ACTIONTRAIL_ID_KEYS:
            if key in section and section[key] not in (None, ""):
                cas_id, region = parse_cert_id(section[key], field=f"data.{part}.{key}")
                if region and called_in and region != called_in:
                    raise MalformedEvent(
                        f"data.{part}.{key} names region {region}, but the CAS call was"
                        f" made in {called_in} (data.acsRegion)"
                    )
                return DeployRequest(
                    cas_id=cas_id,
                    region=region or called_in,
                    shape=SHAPE_ACTIONTRAIL,
                    event_id=event_id,
                    event_type=event_type,
                    source=source,
                    account_id=account,
                )
    raise UnsupportedEvent(
        f"ActionTrail record of {name} carries no certificate id "
        "(the timer sweep will pick the certificate up once it is issued)"
    )


def _acs_region(data: Mapping[str, Any]) -> str | None:
    """The region the recorded CAS call was made in (`acsRegion`), None when absent.

    UNCONFIRMED (chosen): for CAS, ActionTrail's acsRegion is the CAS region the
    certificate lives in (CAS has one endpoint per region).
    """
    value = data.get("acsRegion")
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not is_region(value.strip()):
        raise MalformedEvent("ActionTrail data.acsRegion must be a region id such as cn-hangzhou")
    return value.strip()


def record_section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """An ActionTrail record's section (`requestParameters`, ...) as an object; {} when
    absent or unreadable."""
    section = data.get(name)
    # ActionTrail stores some sections as JSON text.
    if isinstance(section, str):
        try:
            section = json.loads(section)
        except json.JSONDecodeError:
            return {}
    return section if isinstance(section, dict) else {}
