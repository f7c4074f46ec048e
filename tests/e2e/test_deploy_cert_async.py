"""deploy-cert invoked asynchronously through Function Compute, where FC runs a failed
invocation again (same request id): the retried runs must converge on the same
bindings with no duplicate or conflicting write.

The function is deploy-cert's own `index.handler`, wrapped so that its first run dies
after it has written everything (as an instance lost after its work): the FC SDK, the
emulator's async retries, the real handler and the live edge, judged with Python's
`ssl` module rather than certpilot's probe.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import textwrap
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_fc20230330 import models as fc_models
from darabonba.runtime import RuntimeOptions

from tests.e2e.deploy_helpers import OLD, REPO, bound, cloudevent, issue, sha256_of, writes

pytestmark = pytest.mark.e2e

OSS_DOMAIN = "static.example.com"
CDN_DOMAIN = "cdn.example.com"
ESTATE: dict[str, Any] = {
    "certificates": [OLD],
    "buckets": [{"name": "assets", "cnames": [{"domain": OSS_DOMAIN, "certificate": "old"}]}],
    "cdn_domains": [{"name": CDN_DOMAIN, "origin": "assets", "certificate": "old"}],
}

# deploy-cert's handler, run as is; the wrapper records each run's summary and makes
# the first run fail after the handler returned, i.e. after every write went out.
DIES_AFTER_WRITING = textwrap.dedent(
    """
    import importlib.util, os

    _spec = importlib.util.spec_from_file_location("deploy_cert_index", os.environ["INDEX"])
    _index = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_index)

    def handler(event, context):
        summary = _index.handler(event, context)
        with open(os.environ["SUMMARIES"], "a") as out:
            out.write(summary + "\\n")
        if not os.path.exists(os.environ["DIED"]):
            open(os.environ["DIED"], "w").close()
            raise RuntimeError("instance lost after the run")
        return summary
    """
)


def served_sha256(cloud: Any, domain: str) -> str:
    """SHA-256 (upper hex) of the certificate the edge presents for `domain`."""
    host, port = cloud.https.rsplit(":", 1)
    context = ssl.create_default_context(cafile=cloud.ca_bundle)
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=domain) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest().upper()


def test_retried_async_runs_converge_without_duplicate_writes(cloud: Any, tmp_path: Path) -> None:
    # given an OSS custom domain and a CDN domain on an expiring certificate, deploy-cert
    # in FC (layer and all), and a renewed certificate
    ids = cloud.load_estate(ESTATE)
    code = tmp_path / "index.py"
    code.write_text(DIES_AFTER_WRITING)
    summaries = tmp_path / "summaries.jsonl"
    env = {
        k: v
        for k, v in cloud.certpilot_env().items()
        if not k.startswith("ALIBABA_CLOUD_") and k != "CERTPILOT_ACCOUNT_ID"
    }
    cloud.register_function(
        "certpilot-deploy-cert",
        code,
        env={
            **env,
            "CERTPILOT_VERIFY_DEADLINE": "5",
            "CERTPILOT_LOG_LEVEL": "WARNING",
            "INDEX": str(REPO / "functions" / "deploy_cert" / "index.py"),
            "SUMMARIES": str(summaries),
            "DIED": str(tmp_path / "died"),
        },
        layers=[REPO / "shared" / "python"],
        async_retry_delay=0,
    )
    new = issue(cloud, ["*.example.com"], days=90)

    # when the certificate-issued event is delivered asynchronously through the FC SDK
    response = cloud.fc_client().invoke_function_with_options(
        "certpilot-deploy-cert",
        fc_models.InvokeFunctionRequest(body=cloudevent(cloud, new["identifier"])),
        fc_models.InvokeFunctionHeaders(x_fc_invocation_type="Async"),
        RuntimeOptions(),
    )
    assert response.status_code == 202
    request_id = response.headers["x-fc-request-id"]
    last = cloud.wait_invocation(request_id, timeout=90)

    # then FC ran it again after the failure, with the same request id
    records = cloud.invocations("certpilot-deploy-cert")
    assert [(r["requestId"], r["attempt"], r["status"]) for r in records] == [
        (request_id, 1, "failed"),
        (request_id, 2, "succeeded"),
    ]
    first, second = (json.loads(line) for line in summaries.read_text().splitlines())
    assert first["requestId"] == second["requestId"] == request_id
    # the first run deployed both domains, the retry found them current and wrote nothing
    assert first["status"] == "deployed", first
    assert {r["domain"]: r["outcome"] for r in first["results"]} == {
        OSS_DOMAIN: "deployed",
        CDN_DOMAIN: "deployed",
    }
    assert second["status"] == "nothing-to-do", second
    assert {r["domain"]: r["outcome"] for r in second["results"]} == {
        OSS_DOMAIN: "already-current",
        CDN_DOMAIN: "already-current",
    }
    assert json.loads(last["result"]) == second
    assert writes(cloud) == 2  # one write per domain over all runs: no duplicate
    # and the control plane and the live edge agree on the new certificate
    assert bound(cloud) == {OSS_DOMAIN: new["certId"], CDN_DOMAIN: new["certId"]}
    assert ids["old"] != new["certId"]
    for domain in (OSS_DOMAIN, CDN_DOMAIN):
        assert served_sha256(cloud, domain) == sha256_of(cloud, new["certId"])
