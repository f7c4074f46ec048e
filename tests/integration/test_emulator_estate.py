"""Estates: loading the demo and minimal estates, and refusing bad estate files precisely.

The demo estate promises one occurrence of every finding code of DESIGN §6. The checks
below establish each one from the loaded state, the written files and the live edge,
with `cryptography` and Python's `ssl` alone (the emulator shares no code with certpilot).
"""

from __future__ import annotations

import copy
import json
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.edge import Edge
from emulator.estate import DEMO_ESTATE, MINIMAL_ESTATE, EstateError, load_estate, read_estate
from emulator.pki import TestPki
from emulator.policy import DENY, PolicyRequest, evaluate
from emulator.state import BoundCertificate, State
from tests.integration.test_emulator_edge import client_context, fetch, handshake, leaf_der

pytestmark = pytest.mark.integration

RENEWAL_WINDOW = timedelta(days=30)
UNTRUSTED_ORG = "Untrusted Test Authority"


@dataclass
class Loaded:
    state: State
    pki: TestPki
    ids: dict[str, int]
    files: Path
    edge: Edge

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.state.now(), timezone.utc)

    def deployed(self) -> Iterator[tuple[str, str, BoundCertificate]]:
        """(domain, "oss" | "cdn", binding) for every certificate the control plane reports."""
        for bucket in self.state.buckets.values():
            for cname in bucket.cnames.values():
                bound = cname.certificate.latest()
                if bound is not None:
                    yield cname.domain, "oss", bound
        for cdn in self.state.cdn_domains.values():
            bound = cdn.ssl.latest()
            if bound is not None:
                yield cdn.name, "cdn", bound


def chain_of(bound: BoundCertificate) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(bound.cert_pem.encode())


def leaf_of(bound: BoundCertificate) -> x509.Certificate:
    return x509.load_der_x509_certificate(leaf_der(bound.cert_pem, bound.key_pem))


def sans(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return ext.value.get_values_for_type(x509.DNSName)


def covers(name: str, domain: str) -> bool:
    if name.startswith("*."):
        head, _, rest = domain.partition(".")
        return bool(head) and rest == name[2:]
    return name == domain


def wildcard_one_level_off(name: str, domain: str) -> bool:
    if not name.startswith("*."):
        return False
    base = name[2:]
    return domain == base or (
        domain.endswith("." + base) and domain.count(".") > base.count(".") + 1
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def demo(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    state = State()
    files = tmp_path_factory.mktemp("estate-files")
    ids = load_estate(state, pki, read_estate(DEMO_ESTATE), files_dir=files)
    edge = Edge(state, pki=pki).start()
    yield Loaded(state, pki, ids, files, edge)
    edge.close()


# --------------------------------------------------------------------------- the demo


def _no_certificate(world: Loaded) -> bool:
    return any(
        cname.certificate.latest() is None and cname.domain not in world.state.cdn_domains
        for bucket in world.state.buckets.values()
        for cname in bucket.cnames.values()
    )


def _wrong_location(world: Loaded) -> bool:
    for bucket in world.state.buckets.values():
        for cname in bucket.cnames.values():
            cdn = world.state.cdn_domains.get(cname.domain)
            if cdn and cdn.ssl.latest() is None and cname.certificate.latest() is not None:
                # and the edge indeed has nothing to serve for it
                with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
                    handshake(
                        world.edge.https_port, cname.domain, client_context(None, verify=False)
                    )
                return True
    return False


def _dates(check: Callable[[x509.Certificate, datetime], bool]) -> Callable[[Loaded], bool]:
    def finding(world: Loaded) -> bool:
        return any(check(leaf_of(b), world.now) for _, _, b in world.deployed())

    return finding


def _name_mismatch(world: Loaded) -> bool:
    return any(
        not any(covers(n, domain) or wildcard_one_level_off(n, domain) for n in sans(leaf_of(b)))
        for domain, _, b in world.deployed()
    )


def _wildcard_level(world: Loaded) -> bool:
    return any(
        any(wildcard_one_level_off(n, domain) for n in sans(leaf_of(b)))
        and not any(covers(n, domain) for n in sans(leaf_of(b)))
        for domain, _, b in world.deployed()
    )


def _chain_incomplete(world: Loaded) -> bool:
    for domain, _, bound in world.deployed():
        chain = chain_of(bound)
        if len(chain) == 1 and chain[0].issuer != chain[0].subject:
            with pytest.raises(ssl.SSLCertVerificationError, match="local issuer"):
                handshake(world.edge.https_port, domain, client_context(world.pki.ca_bundle_path))
            return True
    return False


def _chain_order(world: Loaded) -> bool:
    return any(
        chain_of(b)[0].public_bytes(serialization.Encoding.DER) != leaf_der(b.cert_pem, b.key_pem)
        for _, _, b in world.deployed()
    )


def _untrusted_root(world: Loaded) -> bool:
    return any(UNTRUSTED_ORG in leaf_of(b).issuer.rfc4514_string() for _, _, b in world.deployed())


def _key_mismatch(world: Loaded) -> bool:
    cert = x509.load_pem_x509_certificates((world.files / "vendor/mismatch.crt").read_bytes())[0]
    key = serialization.load_pem_private_key(
        (world.files / "vendor/mismatch.key").read_bytes(), None
    )
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki)


def _not_pem(world: Loaded) -> bool:
    der = (world.files / "vendor/vendor.der").read_bytes()
    return b"-----BEGIN" not in der and x509.load_der_x509_certificate(der) is not None


def _weak_key(world: Loaded) -> bool:
    return any(
        isinstance(k := leaf_of(b).public_key(), rsa.RSAPublicKey) and k.key_size < 2048
        for _, _, b in world.deployed()
    )


def _weak_signature(world: Loaded) -> bool:
    return any(
        isinstance(leaf_of(b).signature_hash_algorithm, hashes.SHA1) for _, _, b in world.deployed()
    )


def _http_not_forced(world: Loaded) -> bool:
    # an OSS custom domain (not on CDN) that still answers plain HTTP with content
    for bucket in world.state.buckets.values():
        for domain in bucket.cnames:
            on_cdn = domain in world.state.cdn_domains
            if not on_cdn and fetch(world.edge.http_port, domain).status == 200:
                return True
    return False


def _hsts_missing(world: Loaded) -> bool:
    for cdn in world.state.cdn_domains.values():
        hsts = [c for c in cdn.configs.latest() if c.function_name == "HSTS"]
        if cdn.ssl.latest() and not any(c.arg("enabled") == "on" for c in hsts):
            reply = fetch(world.edge.https_port, cdn.name, tls=client_context(None, verify=False))
            return "strict-transport-security" not in reply.headers
    return False


def _no_backup(world: Loaded) -> bool:
    def valid_candidates(domain: str) -> set[str]:
        issuers = set()
        for cert in world.state.certificates.values():
            if cert.revoked or not cert.not_before <= world.now < cert.not_after:
                continue
            if any(covers(n, domain) for n in cert.sans):
                issuers.add(cert.issuer)
        return issuers

    return any(len(valid_candidates(domain)) == 1 for domain, _, _ in world.deployed())


def _served_mismatch(world: Loaded) -> bool:
    for cdn in world.state.cdn_domains.values():
        configured, served = cdn.ssl.latest(), cdn.ssl.at(world.state.now())
        if configured and served and configured.cert_pem != served.cert_pem:
            leaf = handshake(world.edge.https_port, cdn.name, client_context(None, verify=False))
            return (
                leaf
                == leaf_der(served.cert_pem, served.key_pem)
                != leaf_der(configured.cert_pem, configured.key_pem)
            )
    return False


FINDINGS: dict[str, Callable[[Loaded], bool]] = {
    "NO_CERTIFICATE": _no_certificate,
    "WRONG_LOCATION": _wrong_location,
    "CERT_EXPIRED": _dates(lambda c, now: c.not_valid_after_utc < now),
    "CERT_NOT_YET_VALID": _dates(lambda c, now: c.not_valid_before_utc > now),
    "CERT_EXPIRING": _dates(
        lambda c, now: c.not_valid_before_utc <= now < c.not_valid_after_utc < now + RENEWAL_WINDOW
    ),
    "NAME_MISMATCH": _name_mismatch,
    "WILDCARD_LEVEL": _wildcard_level,
    "CHAIN_INCOMPLETE": _chain_incomplete,
    "CHAIN_ORDER": _chain_order,
    "UNTRUSTED_ROOT": _untrusted_root,
    "KEY_MISMATCH": _key_mismatch,
    "NOT_PEM": _not_pem,
    "WEAK_KEY": _weak_key,
    "WEAK_SIGNATURE": _weak_signature,
    "HTTP_NOT_FORCED": _http_not_forced,
    "HSTS_MISSING": _hsts_missing,
    "NO_BACKUP": _no_backup,
    "SERVED_MISMATCH": _served_mismatch,
}


@pytest.mark.parametrize("code", sorted(FINDINGS))
def test_every_finding_code_occurs_in_the_demo_estate(demo: Loaded, code: str) -> None:
    assert FINDINGS[code](demo), f"the demo estate has no occurrence of {code}"


def test_the_demo_baseline_is_healthy_where_it_should_be(demo: Loaded) -> None:
    trusting = client_context(demo.pki.ca_bundle_path)
    # www.example.com: CDN, valid certificate, HTTPS forced, HSTS, origin over HTTPS
    secure = fetch(demo.edge.https_port, "www.example.com", "/css/site.css", tls=trusting)
    assert secure.status == 200
    assert secure.headers["strict-transport-security"] == "max-age=5184000; includeSubDomains"
    assert fetch(demo.edge.http_port, "www.example.com").status == 301
    # static.example.com: OSS custom domain on the HTTPS-only bucket
    assert fetch(demo.edge.https_port, "static.example.com", tls=trusting).status == 200
    assert fetch(demo.edge.http_port, "static.example.com").status == 403
    # the bucket domain is Alibaba's and simply works
    bucket_domain = "assets-prod.oss-cn-hangzhou.aliyuncs.com"
    assert fetch(demo.edge.https_port, bucket_domain, tls=trusting).status == 200
    # a backup from CA Two exists for www and the two CAs differ
    issuers = {
        demo.state.certificates[demo.ids[name]].issuer
        for name in ("www-apex-example-com", "backup-ca-two")
    }
    assert len(issuers) == 2
    # the CDN domain behind the policy-free bucket pulls over HTTP and works today
    media = demo.state.buckets["media-prod"]
    request = PolicyRequest("oss:GetObject", "acs:oss:*:*:media-prod/index.html")
    assert evaluate(media.policy.latest(), request) != DENY
    assert fetch(demo.edge.https_port, "img.example.com", tls=trusting).status == 200


def test_the_demo_holds_a_revoked_certificate(demo: Loaded) -> None:
    assert demo.state.certificates[demo.ids["wildcard-example-com-revoked"]].revoked


def test_the_minimal_estate_loads_and_serves(pki: TestPki) -> None:
    state = State()
    ids = load_estate(state, pki, read_estate(MINIMAL_ESTATE))
    edge = Edge(state).start()
    try:
        trusting = client_context(pki.ca_bundle_path)
        for host in ("www.example.net", "cdn.example.net"):
            assert fetch(edge.https_port, host, tls=trusting).status == 200
        assert set(ids) == {"wildcard-example-net", "backup-example-net"}
    finally:
        edge.close()


# --------------------------------------------------------------------------- bad estates


BASE: dict[str, Any] = {
    "certificates": [{"name": "c1", "sans": ["www.example.org"]}],
    "buckets": [{"name": "site", "cnames": [{"domain": "www.example.org", "certificate": "c1"}]}],
    "cdn_domains": [{"name": "cdn.example.org", "origin": "site", "certificate": "c1"}],
}


def _edit(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set `value` at a dotted path like "buckets.0.cnames.0.certificate" (None deletes)."""

    def apply(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = document
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) else last
        if value is _DELETE:
            del target[key]
        else:
            target[key] = value

    return apply


_DELETE = object()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_edit("colour", "blue"), "estate: unknown key 'colour'"),
        (_edit("certificates", {}), "certificates: expected a list, got an object"),
        (_edit("certificates.0.sans", _DELETE), "certificates[0]: missing required key 'sans'"),
        (
            _edit("certificates.0.ca", "three"),
            "certificates[0].ca: expected one of one, two, untrusted, got 'three'",
        ),
        (
            _edit("certificates.0.key_type", "dsa"),
            "certificates[0].key_type: expected one of ec, rsa, rsa1024",
        ),
        (
            _edit("certificates.0.chain", "broken"),
            "certificates[0].chain: expected one of complete, leaf-only",
        ),
        (
            _edit("certificates.0.not_after", "20 days"),
            'certificates[0].not_after: expected a relative time like "-10d"',
        ),
        (
            _edit("certificates.0.days", -3),
            "certificates[0].days: expected a finite positive number of days, got -3",
        ),
        (
            _edit("certificates.0.days", float("inf")),  # what JSON's 1e400 reads as
            "certificates[0].days: expected a finite positive number of days, got inf",
        ),
        (
            _edit("certificates.0.days", float("nan")),
            "certificates[0].days: expected a finite positive number of days, got nan",
        ),
        (
            _edit("certificates.0.days", 1e10),
            "certificates[0]: days=10000000000.0 ends after the year 9999",
        ),
        (
            _edit("certificates.0.not_after", "+99999999999d"),
            "certificates[0].not_after: '+99999999999d' is outside the years 1 to 9999",
        ),
        (_edit("certificates.0.sans", ["bad..name"]), "certificates[0]: invalid name 'bad..name'"),
        (
            _edit("certificates", [{"name": "c1", "sans": ["a.example.org"]}] * 2),
            "certificates[1].name: duplicate certificate name 'c1'",
        ),
        (
            _edit("buckets.0.name", "Bad_Bucket"),
            "buckets[0].name: 'Bad_Bucket' is not a valid bucket name",
        ),
        (_edit("buckets.0.region", "hangzhou"), "buckets[0].region: 'hangzhou' is not a region id"),
        (
            _edit("buckets.0.cnames.0.certificate", "c2"),
            "buckets[0].cnames[0].certificate: no certificate named 'c2' (known: c1)",
        ),
        (
            _edit("buckets.0.cnames.0.domain", "not a domain"),
            "buckets[0].cnames[0].domain: 'not a domain' is not a valid domain name",
        ),
        (
            _edit("buckets.0.cnames", [{"domain": "www.example.org"}] * 2),
            "buckets[0].cnames[1].domain: www.example.org is already bound to a bucket",
        ),
        (
            _edit("buckets.0.policy", {"Statement": []}),
            "buckets[0].policy: Statement must be a non-empty list",
        ),
        (
            _edit("buckets.0.https_only", "yes"),
            "buckets[0].https_only: expected true or false, got 'yes'",
        ),
        (
            _edit("cdn_domains.0.origin", "nowhere"),
            "cdn_domains[0].origin: no bucket named 'nowhere' (known: site)",
        ),
        (
            _edit("cdn_domains.0.configs", {"https_forced": {"enable": "on"}}),
            "cdn_domains[0].configs: unknown CDN function 'https_forced'",
        ),
        (
            _edit("cdn_domains.0.configs", {"HSTS": {"enabled": "on"}}),
            "cdn_domains[0].configs.HSTS: missing argument https_hsts_max_age",
        ),
        (
            _edit("cdn_domains.0.configs", {"https_force": {"enable": "yes"}}),
            "cdn_domains[0].configs.https_force.enable: expected one of on, off, got 'yes'",
        ),
        (
            _edit(
                "cdn_domains.0.configs",
                {"https_force": {"enable": "on"}, "http_force": {"enable": "off"}},
            ),
            "cdn_domains[0].configs: https_force and http_force exclude each other",
        ),
        (
            _edit("cdn_domains.0.sources", []),
            "cdn_domains[0]: give exactly one of origin (a bucket name) or sources",
        ),
        (
            _edit("settings", {"propagation_delay": -1}),
            "settings.propagation_delay: expected a finite number of seconds >= 0, got -1",
        ),
        (
            _edit("settings", {"propagation_delay": float("nan")}),
            "settings.propagation_delay: expected a finite number of seconds >= 0, got nan",
        ),
        (
            _edit("files", [{"path": "../x.pem", "certificate": "c1"}]),
            "files[0].path: '../x.pem' must be a relative file path",
        ),
        (
            _edit("files", [{"path": "x.pem", "certificate": "c1", "content": "jks"}]),
            "files[0].content: expected one of chain, leaf, key, der, p7b, pfx",
        ),
    ],
)
def test_a_bad_estate_is_refused_with_the_field_named_and_nothing_created(
    pki: TestPki, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    # given an estate with one mistake
    document = copy.deepcopy(BASE)
    edit(document)
    state = State()

    # when it is loaded, then the error names the field and nothing was created
    with pytest.raises(EstateError, match="^" + re.escape(message)):
        load_estate(state, pki, document)
    assert (state.buckets, state.cdn_domains, state.certificates) == ({}, {}, {})


def test_the_base_estate_of_the_error_table_is_itself_valid(pki: TestPki) -> None:
    state = State()
    load_estate(state, pki, copy.deepcopy(BASE))
    assert set(state.buckets) == {"site"} and set(state.cdn_domains) == {"cdn.example.org"}


def test_resources_that_exist_already_are_refused(pki: TestPki) -> None:
    state = State()
    load_estate(state, pki, copy.deepcopy(BASE))
    with pytest.raises(EstateError, match=r"^buckets\[0\]\.name: bucket 'site' already exists"):
        load_estate(state, pki, copy.deepcopy(BASE))


def test_read_estate_names_a_file_that_is_not_json(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"buckets": [}')
    with pytest.raises(EstateError, match=r"broken\.json: not valid JSON: .*line 1"):
        read_estate(broken)


def test_relative_and_absolute_times(pki: TestPki) -> None:
    state = State()
    document = {
        "certificates": [
            {"name": "rel", "sans": ["a.example.org"], "not_before": "-10d", "not_after": "+20d"},
            {
                "name": "abs",
                "sans": ["b.example.org"],
                "not_before": "2020-01-01T00:00:00Z",
                "not_after": "2021-01-01T00:00:00Z",
            },
        ]
    }
    ids = load_estate(state, pki, json.loads(json.dumps(document)))
    now = datetime.fromtimestamp(state.now(), timezone.utc)
    rel = state.certificates[ids["rel"]]
    assert abs(rel.not_after - (now + timedelta(days=20))) < timedelta(minutes=1)
    assert abs(rel.not_before - (now - timedelta(days=10))) < timedelta(minutes=1)
    assert state.certificates[ids["abs"]].not_after == datetime(2021, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("days", ["1e400", "-1e400", "NaN", "Infinity", "1e10", '"90"', "true"])
def test_an_estate_with_an_unusable_number_is_a_clear_400_over_the_admin_api(
    cloud: Any, days: str
) -> None:
    # given an estate whose certificate lasts a number of days no certificate can hold,
    # written as JSON text (1e400 overflows to infinity when parsed)
    body = '{"certificates": [{"name": "c", "sans": ["a.example.org"], "days": DAYS}]}'
    body = body.replace("DAYS", days)
    # when it is posted to the admin API
    status, answer = post_raw(cloud, "estate", body)
    # then it is refused naming the field, not answered with a 500 traceback
    assert status == 400, answer
    assert "certificates[0]" in answer["Message"] and "days" in answer["Message"]
    assert cloud.state()["certificates"] == {}


def post_raw(cloud: Any, path: str, body: str) -> tuple[int, Any]:
    """POST `body` as is (JSON text the test writes by hand) to `/_emulator/<path>`."""
    request = urllib.request.Request(
        f"{cloud.api}/_emulator/{path}", data=body.encode(), method="POST"
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_an_estate_loaded_through_the_admin_api_is_served_by_the_emulator_edge(
    cloud: Any,
) -> None:
    # given the emulator process, with the minimal estate posted to its admin API
    cloud.load_estate(read_estate(MINIMAL_ESTATE))
    host, port = cloud.https.rsplit(":", 1)

    # when a browser trusting the emulator's CA bundle visits the custom domain
    reply = fetch(int(port), "www.example.net", tls=client_context(Path(cloud.ca_bundle)))

    # then it is served over verified HTTPS
    assert host == "127.0.0.1"
    assert reply.status == 200


def test_an_estate_oss_upload_binding_has_an_id_like_a_put_cname_upload(cloud: Any) -> None:
    # given an estate binding a certificate CAS does not hold straight to OSS
    cloud.load_estate(
        {
            "certificates": [{"name": "up", "sans": ["up.example.org"], "cas": False}],
            "buckets": [
                {"name": "site", "cnames": [{"domain": "up.example.org", "certificate": "up"}]}
            ],
        }
    )
    # when ListCname reports the binding through the real SDK
    import alibabacloud_oss_v2 as oss

    result = cloud.oss_client().list_cname(oss.ListCnameRequest(bucket="site"))
    (cname,) = result.cnames
    # then it is an Upload with its own OSS id in `<id>-<region>` form, as OSS numbers it
    assert cname.certificate.type == "Upload"
    number, _, region = cname.certificate.cert_id.partition("-")
    assert number.isdigit() and region == "cn-hangzhou"
