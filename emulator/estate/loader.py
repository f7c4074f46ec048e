"""Reading an estate document and loading it into `State` all at once, or not at all."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from emulator.estate.buckets import bucket
from emulator.estate.cdn_domains import cdn_domain
from emulator.estate.certificates import certificate
from emulator.estate.fields import EstateError, as_bool, as_list, as_object
from emulator.estate.files import estate_file, write_files
from emulator.estate.plan import Plan
from emulator.pki import TestPki
from emulator.state import State

ESTATES_DIR = Path(__file__).parent.parent / "estates"
DEMO_ESTATE = ESTATES_DIR / "demo.json"
MINIMAL_ESTATE = ESTATES_DIR / "minimal.json"


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
    root = as_object(
        data,
        "estate",
        {"description", "settings", "certificates", "buckets", "cdn_domains", "files"},
    )
    now = state.now()
    plan = Plan(next_upload_id=state.next_cert_id)
    plan.settings = _settings(root.get("settings", {}))
    with state.lock:
        for index, item in enumerate(as_list(root.get("certificates", []), "certificates")):
            cert = certificate(state, pki, item, f"certificates[{index}]", now, plan)
            plan.certs[cert.name] = cert
        taken_domains = {d for b in state.buckets.values() for d in b.cnames}
        for index, item in enumerate(as_list(root.get("buckets", []), "buckets")):
            plan.buckets.append(bucket(state, item, f"buckets[{index}]", now, plan, taken_domains))
        for index, item in enumerate(as_list(root.get("cdn_domains", []), "cdn_domains")):
            plan.cdn_domains.append(cdn_domain(state, item, f"cdn_domains[{index}]", now, plan))
        for index, item in enumerate(as_list(root.get("files", []), "files")):
            plan.files.append(estate_file(item, f"files[{index}]", plan))
        _apply(state, plan)
    write_files(plan.files, files_dir or pki.directory / "estate-files")
    return {name: c.cas.id for name, c in plan.certs.items() if c.cas is not None}


def _settings(value: Any) -> dict[str, Any]:
    where = "settings"
    item = as_object(value, where, {"propagation_delay", "verify_domain_ownership"})
    out: dict[str, Any] = {}
    if "propagation_delay" in item:
        delay = item["propagation_delay"]
        if (
            isinstance(delay, bool)
            or not isinstance(delay, (int, float))
            or not math.isfinite(delay)
            or delay < 0
        ):
            raise EstateError(
                f"{where}.propagation_delay: expected a finite number of seconds >= 0,"
                f" got {delay!r}"
            )
        out["propagation_delay"] = float(delay)
    if "verify_domain_ownership" in item:
        out["verify_domain_ownership"] = as_bool(
            item["verify_domain_ownership"], f"{where}.verify_domain_ownership"
        )
    return out


def _apply(state: State, plan: Plan) -> None:
    if "propagation_delay" in plan.settings:
        state.propagation_delay = plan.settings["propagation_delay"]
    if "verify_domain_ownership" in plan.settings:
        state.verify_domain_ownership = plan.settings["verify_domain_ownership"]
    for cert in plan.certs.values():
        if cert.cas is not None:
            state.certificates[cert.cas.id] = cert.cas
    for made in plan.buckets:
        state.buckets[made.name] = made
    for domain in plan.cdn_domains:
        state.cdn_domains[domain.name] = domain
