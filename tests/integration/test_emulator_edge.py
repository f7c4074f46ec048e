"""The emulator's edge, probed the way a browser and `openssl s_client` would.

Scenarios: real TLS handshakes with SNI against the HTTPS listener (which certificate,
which chain, which failures), HTTP semantics on both listeners (redirects, HSTS, the
HTTPS-only bucket policy, the CDN origin protocol), and the propagation delay.
"""

from __future__ import annotations

import gzip
import http.client
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from emulator.edge import Edge
from emulator.pki import TestPki
from emulator.policy import https_only_policy
from emulator.propagation import Propagating
from emulator.state import (
    BoundCertificate,
    Bucket,
    CdnConfig,
    CdnDomain,
    Cname,
    State,
    StoredObject,
)

pytestmark = pytest.mark.integration

BUCKET = "assets"
INDEX = b"<p>hello from the bucket</p>"


# --------------------------------------------------------------------------- helpers


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def client_context(cafile: Path | None, *, verify: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # accept weak keys, to look at them
    return context


def handshake(port: int, name: str, context: ssl.SSLContext) -> bytes:
    """The leaf (DER) the edge serves for SNI `name`; raises ssl.SSLError on failure."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with raw, context.wrap_socket(raw, server_hostname=name) as tls:
        leaf = tls.getpeercert(binary_form=True)
        assert leaf is not None
        return leaf


def fetch(
    port: int,
    host: str,
    path: str = "/",
    *,
    tls: ssl.SSLContext | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request to the edge at 127.0.0.1:`port` for `host` (SNI and Host header)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock = tls.wrap_socket(raw, server_hostname=host) if tls else raw
    conn = http.client.HTTPConnection(host, timeout=5)
    conn.sock = sock
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        conn.close()


def served_chain(port: int, name: str) -> list[bytes]:
    """The chain as sent on the wire (DER, in order), read with `openssl s_client`."""
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", name, "-showcerts"],
        input=b"",
        capture_output=True,
        timeout=10,
        check=False,
    )
    return [
        cert.public_bytes(serialization.Encoding.DER)
        for cert in x509.load_pem_x509_certificates(result.stdout)
    ]


def ders(chain_pem: str) -> list[bytes]:
    return [
        c.public_bytes(serialization.Encoding.DER)
        for c in x509.load_pem_x509_certificates(chain_pem.encode())
    ]


def leaf_der(chain_pem: str, key_pem: str) -> bytes:
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for cert in x509.load_pem_x509_certificates(chain_pem.encode()):
        public = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if public == spki:
            return cert.public_bytes(serialization.Encoding.DER)
    raise AssertionError("no certificate of the key in the chain")


def bound(pair: tuple[str, str], cert_type: str = "Upload") -> BoundCertificate:
    return BoundCertificate(cert_type, None, "", "test", pair[0], pair[1], 0.0)


def configs(**functions: dict[str, str]) -> tuple[CdnConfig, ...]:
    return tuple(
        CdnConfig(i + 1, name, tuple(args.items()))
        for i, (name, args) in enumerate(functions.items())
    )


class World:
    """An in-process account with an edge in front of it, and builders for the scenarios."""

    def __init__(self, state: State, edge: Edge, pki: TestPki) -> None:
        self.state = state
        self.edge = edge
        self.pki = pki
        self.bucket = Bucket(BUCKET, "cn-hangzhou", time.time(), state.account_id)
        self.bucket.objects["index.html"] = StoredObject(INDEX, "text/html", time.time(), "E1")
        state.buckets[BUCKET] = self.bucket

    def https_only(self) -> None:
        self.bucket.policy = Propagating(https_only_policy(BUCKET))

    def oss_domain(self, domain: str, pair: tuple[str, str] | None) -> Cname:
        cname = Cname(domain, BUCKET)
        cname.certificate = Propagating(bound(pair) if pair else None)
        self.bucket.cnames[domain] = cname
        return cname

    def cdn_domain(
        self,
        domain: str,
        pair: tuple[str, str] | None,
        features: tuple[CdnConfig, ...] = (),
        *,
        status: str = "online",
    ) -> CdnDomain:
        source = {"type": "oss", "content": self.bucket.bucket_domain, "port": 80}
        cdn = CdnDomain(domain, "web", [source], f"{domain}.w.kunlunca.com", time.time())
        cdn.status = Propagating(status)
        cdn.ssl = Propagating(bound(pair, "cas") if pair else None)
        cdn.configs = Propagating(features)
        self.state.cdn_domains[domain] = cdn
        return cdn

    @property
    def trusting(self) -> ssl.SSLContext:
        return client_context(self.pki.ca_bundle_path)

    def get(self, host: str, path: str = "/", *, https: bool, **kw: object) -> Reply:
        if https:
            return fetch(self.edge.https_port, host, path, tls=self.trusting, **kw)  # type: ignore[arg-type]
        return fetch(self.edge.http_port, host, path, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def world(pki: TestPki) -> Iterator[World]:
    state = State(propagation_delay=0.0)
    edge = Edge(state, pki=pki).start()
    yield World(state, edge, pki)
    edge.close()


# --------------------------------------------------------------------------- TLS


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@needs_openssl
@pytest.mark.parametrize(
    ("shape", "served_order"),
    [
        ("complete", "as stored"),
        ("leaf-only", "as stored"),
        ("with-root", "as stored"),
        # TLS puts the end-entity certificate first; the rest keeps its stored order.
        ("wrong-order", "leaf first"),
    ],
)
def test_the_edge_serves_exactly_the_configured_chain(
    world: World, shape: str, served_order: str
) -> None:
    # given a custom domain whose hosted certificate has a chain of this shape
    pair = world.pki.issue(["chain.example.com"], chain=shape)
    world.oss_domain("chain.example.com", pair)

    # when openssl reads the chain off the wire
    chain = served_chain(world.edge.https_port, "chain.example.com")

    # then it is the configured one, certificate for certificate
    configured = ders(pair[0])
    if served_order == "leaf first":
        configured = [configured[1], configured[0]]
    assert chain == configured


@pytest.mark.parametrize(
    ("recipe", "verifies", "reason"),
    [
        ({}, True, ""),
        ({"chain": "with-root"}, True, ""),
        ({"chain": "leaf-only"}, False, "unable to get local issuer certificate"),
        ({"ca": "untrusted"}, False, "unable to get local issuer certificate"),
        (
            {"not_before": datetime.now(timezone.utc) - timedelta(days=30), "days": 10},
            False,
            "certificate has expired",
        ),
        ({"key_type": "rsa1024"}, False, "key too weak"),
        ({"signature_hash": "sha1"}, False, "digest algorithm too weak"),
    ],
)
def test_python_ssl_judges_the_served_chain(
    world: World, recipe: dict[str, object], verifies: bool, reason: str
) -> None:
    # given a domain with a certificate made by this recipe
    pair = world.pki.issue(["tls.example.com"], **recipe)  # type: ignore[arg-type]
    world.oss_domain("tls.example.com", pair)
    port = world.edge.https_port

    # when a client without verification connects, it sees the configured leaf
    assert handshake(port, "tls.example.com", client_context(None, verify=False)) == leaf_der(*pair)

    # then a verifying client accepts or refuses it for the expected reason
    if verifies:
        handshake(port, "tls.example.com", world.trusting)
    else:
        with pytest.raises(ssl.SSLCertVerificationError, match=reason):
            handshake(port, "tls.example.com", world.trusting)


def test_a_cdn_certificate_wins_over_one_hosted_on_oss(world: World) -> None:
    # given a domain bound to the bucket with one certificate and on CDN with another
    oss_pair = world.pki.issue(["both.example.com"], ca="one")
    cdn_pair = world.pki.issue(["both.example.com"], ca="two")
    world.oss_domain("both.example.com", oss_pair)
    world.cdn_domain("both.example.com", cdn_pair)

    # when a browser connects, then it gets the CDN certificate
    served = handshake(world.edge.https_port, "both.example.com", world.trusting)
    assert served == leaf_der(*cdn_pair)


def test_a_certificate_on_oss_does_not_serve_a_cdn_domain(world: World) -> None:
    # given the FAQ's wrong location: certificate hosted on OSS, traffic through CDN
    world.oss_domain("wrong.example.com", world.pki.issue(["wrong.example.com"]))
    world.cdn_domain("wrong.example.com", None)

    # when a browser connects, then the handshake fails (ERR_SSL_PROTOCOL_ERROR)
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        handshake(world.edge.https_port, "wrong.example.com", world.trusting)


@pytest.mark.parametrize("case", ["unknown name", "oss domain without certificate", "offline cdn"])
def test_names_without_a_certificate_fail_the_handshake(world: World, case: str) -> None:
    # given a name the edge has no certificate for
    if case == "oss domain without certificate":
        world.oss_domain("nameless.example.com", None)
    elif case == "offline cdn":
        world.cdn_domain(
            "nameless.example.com", world.pki.issue(["nameless.example.com"]), status="offline"
        )

    # when a client connects with that SNI, then there is no default certificate
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        handshake(world.edge.https_port, "nameless.example.com", client_context(None, verify=False))


def test_an_idn_is_served_by_its_a_label(world: World) -> None:
    # given a custom domain with a certificate for an internationalized name
    pair = world.pki.issue(["bücher.example.com"])
    world.oss_domain("xn--bcher-kva.example.com", pair)

    # when a browser connects to the A-label, then it verifies
    served = handshake(world.edge.https_port, "xn--bcher-kva.example.com", world.trusting)
    assert served == leaf_der(*pair)


def test_a_bucket_domain_is_served_with_a_managed_certificate(world: World) -> None:
    # given only a bucket: its bucket domain is Alibaba's to serve
    host = world.bucket.bucket_domain

    # when a browser fetches the bucket domain over HTTPS, then it verifies and answers
    reply = world.get(host, "/index.html", https=True)
    assert (reply.status, reply.body) == (200, INDEX)


def test_a_certificate_change_reaches_the_edge_after_the_propagation_delay(world: World) -> None:
    # given a domain serving an old certificate, a one-second propagation delay, and the
    # emulator's clock under the test's control (no race with a loaded machine)
    old, new = world.pki.issue(["prop.example.com"]), world.pki.issue(["prop.example.com"])
    cname = world.oss_domain("prop.example.com", old)
    now = [world.state.now()]
    world.state.clock = lambda: now[0]
    port, trusting = world.edge.https_port, world.trusting
    assert handshake(port, "prop.example.com", trusting) == leaf_der(*old)

    # when the control plane binds the new certificate
    cname.certificate.set(bound(new), now[0], 1.0)

    # then the edge keeps serving the old one until the delay has passed, then the new one
    now[0] += 0.99
    assert handshake(port, "prop.example.com", trusting) == leaf_der(*old)
    now[0] += 0.01
    assert handshake(port, "prop.example.com", trusting) == leaf_der(*new)


# --------------------------------------------------------------------------- HTTP


@pytest.mark.parametrize("rewrite", ["301", "308"])
def test_https_force_redirects_plain_http(world: World, rewrite: str) -> None:
    # given a CDN domain that forces HTTPS
    world.cdn_domain(
        "cdn.example.com",
        world.pki.issue(["cdn.example.com"]),
        configs(https_force={"enable": "on", "https_rewrite": rewrite}),
    )

    # when a visitor asks over HTTP, then it is sent to the same URL over HTTPS
    reply = world.get("cdn.example.com", "/a/b.css?v=2", https=False)
    assert reply.status == int(rewrite)
    assert reply.headers["location"] == "https://cdn.example.com/a/b.css?v=2"


def test_cdn_without_https_force_serves_plain_http(world: World) -> None:
    world.cdn_domain("cdn.example.com", world.pki.issue(["cdn.example.com"]))

    reply = world.get("cdn.example.com", https=False)

    assert (reply.status, reply.body) == (200, INDEX)
    assert "strict-transport-security" not in reply.headers


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"enabled": "on", "https_hsts_max_age": "5184000"}, "max-age=5184000"),
        (
            {"enabled": "on", "https_hsts_max_age": "600", "https_hsts_include_subdomains": "on"},
            "max-age=600; includeSubDomains",
        ),
        ({"enabled": "off", "https_hsts_max_age": "600"}, None),
    ],
)
def test_hsts_header_over_https(world: World, args: dict[str, str], expected: str | None) -> None:
    # given a CDN domain with this HSTS configuration
    world.cdn_domain("cdn.example.com", world.pki.issue(["cdn.example.com"]), configs(HSTS=args))

    # when a browser fetches over HTTPS and over HTTP
    secure = world.get("cdn.example.com", https=True)
    plain = world.get("cdn.example.com", https=False)

    # then only the HTTPS answer carries the header
    assert secure.status == 200
    assert secure.headers.get("strict-transport-security") == expected
    assert "strict-transport-security" not in plain.headers


def test_https_only_policy_denies_plain_http_on_a_custom_domain(world: World) -> None:
    # given a custom domain on a bucket whose policy denies insecure transport
    world.oss_domain("static.example.com", world.pki.issue(["static.example.com"]))
    world.https_only()

    # when a visitor asks over HTTP, then OSS refuses with AccessDenied
    plain = world.get("static.example.com", "/index.html", https=False)
    assert plain.status == 403
    assert b"<Code>AccessDenied</Code>" in plain.body
    assert plain.headers["x-oss-ec"] == "0003-00000101"

    # and over HTTPS the object is served
    secure = world.get("static.example.com", "/index.html", https=True)
    assert (secure.status, secure.body) == (200, INDEX)


@pytest.mark.parametrize(
    ("forward_scheme", "client_https", "status"),
    [
        (None, True, 403),  # no forward_scheme: CDN pulls over HTTP
        (None, False, 403),
        ({"enable": "on", "scheme_origin": "http"}, True, 403),
        ({"enable": "on", "scheme_origin": "https"}, True, 200),
        ({"enable": "on", "scheme_origin": "https"}, False, 200),
        ({"enable": "on", "scheme_origin": "follow"}, True, 200),
        ({"enable": "on", "scheme_origin": "follow"}, False, 403),
        ({"enable": "on"}, True, 200),  # scheme_origin absent means follow
        ({"enable": "off", "scheme_origin": "https"}, True, 403),
    ],
)
def test_https_only_policy_breaks_cdn_domains_pulling_over_http(
    world: World, forward_scheme: dict[str, str] | None, client_https: bool, status: int
) -> None:
    # given an HTTPS-only bucket behind a CDN domain with this origin protocol
    world.https_only()
    features = configs(forward_scheme=forward_scheme) if forward_scheme else ()
    world.cdn_domain("cdn.example.com", world.pki.issue(["cdn.example.com"]), features)

    # when a visitor fetches through CDN
    reply = world.get("cdn.example.com", "/index.html", https=client_https)

    # then it works exactly when the origin is fetched over HTTPS
    assert reply.status == status
    if status == 403:
        assert b"<Code>AccessDenied</Code>" in reply.body


def test_a_missing_object_is_no_such_key(world: World) -> None:
    world.oss_domain("static.example.com", None)

    reply = world.get("static.example.com", "/nope.txt", https=False)

    assert reply.status == 404
    assert b"<Code>NoSuchKey</Code>" in reply.body
    assert reply.headers["content-type"] == "application/xml"


def test_head_answers_headers_without_a_body(world: World) -> None:
    world.oss_domain("static.example.com", None)

    reply = world.get("static.example.com", "/index.html", https=False, method="HEAD")

    assert reply.status == 200
    assert reply.headers["content-length"] == str(len(INDEX))
    assert reply.headers["etag"] == '"E1"'
    assert reply.body == b""


def test_an_unknown_host_over_http_is_no_such_bucket(world: World) -> None:
    reply = world.get("nobody.example.com", https=False)

    assert reply.status == 404
    assert b"<Code>NoSuchBucket</Code>" in reply.body


def test_gzip_compresses_text_for_clients_that_accept_it(world: World) -> None:
    world.cdn_domain("cdn.example.com", None, configs(gzip={"enable": "on"}))

    reply = world.get("cdn.example.com", https=False, headers={"Accept-Encoding": "gzip"})

    assert reply.headers["content-encoding"] == "gzip"
    assert gzip.decompress(reply.body) == INDEX


def test_keep_alive_serves_several_requests_on_one_connection(world: World) -> None:
    world.oss_domain("static.example.com", world.pki.issue(["static.example.com"]))
    raw = socket.create_connection(("127.0.0.1", world.edge.https_port), timeout=5)
    conn = http.client.HTTPConnection("static.example.com", timeout=5)
    conn.sock = world.trusting.wrap_socket(raw, server_hostname="static.example.com")
    try:
        for _ in range(3):
            conn.request("GET", "/index.html")
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, INDEX)
    finally:
        conn.close()


def test_a_wildcard_cdn_domain_serves_its_subdomains(world: World) -> None:
    # given a wildcard CDN domain with a wildcard certificate
    pair = world.pki.issue(["*.wild.example.com"])
    world.cdn_domain("*.wild.example.com", pair)

    # when a browser visits a name under it, then CDN serves it; two levels down, nothing does
    reply = world.get("a.wild.example.com", "/index.html", https=True)
    assert (reply.status, reply.body) == (200, INDEX)
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        handshake(world.edge.https_port, "a.b.wild.example.com", world.trusting)


def test_a_wildcard_oss_custom_domain_serves_its_subdomains(world: World) -> None:
    # given a wildcard custom domain bound to the bucket with a wildcard certificate
    pair = world.pki.issue(["*.files.example.com"])
    world.oss_domain("*.files.example.com", pair)
    world.oss_domain("exact.files.example.com", None)

    # when a browser visits a name under it, then the bucket serves it with that certificate
    reply = world.get("a.files.example.com", "/index.html", https=True)
    assert (reply.status, reply.body) == (200, INDEX)
    served = handshake(world.edge.https_port, "b.files.example.com", world.trusting)
    assert served == leaf_der(*pair)
    # and a name bound on its own keeps its own (missing) certificate; two levels down,
    # nothing serves
    for name in ("exact.files.example.com", "a.b.files.example.com"):
        with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
            handshake(world.edge.https_port, name, world.trusting)


def test_the_test_pki_has_two_trusted_issuers_and_an_untrusted_one(tmp_path: Path) -> None:
    # when a PKI is made
    made = TestPki.create(tmp_path)

    # then it is quick to make: every CA has an EC P-256 key (no RSA key generation; the
    # wall-clock cost is part of the start time `make bench` measures), its bundle holds
    # only the trusted root, and its CAs differ
    for ca in ("one", "two", "untrusted"):
        for pem in (made.intermediate_pem(ca), made.root_of(ca)):
            key = x509.load_pem_x509_certificate(pem.encode()).public_key()
            assert isinstance(key, ec.EllipticCurvePublicKey)
            assert key.curve.name == "secp256r1"
    bundle = x509.load_pem_x509_certificates(made.ca_bundle_path.read_bytes())
    assert [c.subject.rfc4514_string() for c in bundle] == [
        "CN=Emulator Root CA,O=Emulator Trust Services,C=CN"
    ]
    organizations = {
        x509.load_pem_x509_certificate(made.intermediate_pem(ca).encode()).subject.rfc4514_string()
        for ca in ("one", "two", "untrusted")
    }
    assert len(organizations) == 3
    untrusted_root = x509.load_pem_x509_certificate(made.root_of("untrusted").encode())
    assert untrusted_root.subject.rfc4514_string().startswith("CN=Untrusted Root")
