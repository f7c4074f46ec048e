"""The configurable CDN features (`functionName`), their arguments and how they are checked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from emulator.cdn.errors import invalid


@dataclass(frozen=True)
class Feature:
    """A configurable CDN feature (`functionName`) and the arguments it accepts."""

    func_id: int | None
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    multi: bool = False  # several configs of this feature may coexist on one domain


FEATURES: dict[str, Feature] = {
    "https_force": Feature(44, ("enable",), ("https_rewrite",)),
    "http_force": Feature(45, ("enable",), ("http_rewrite",)),
    "HSTS": Feature(112, ("enabled", "https_hsts_max_age"), ("https_hsts_include_subdomains",)),
    "https_option": Feature(78, (), ("http2", "ocsp_stapling")),
    "https_tls_version": Feature(
        110, (), ("tls10", "tls11", "tls12", "tls13", "ciphersuitegroup", "ciphersuite")
    ),
    "gzip": Feature(35, ("enable",)),
    "brotli": Feature(97, ("enable",)),
    "forward_scheme": Feature(47, ("enable",), ("scheme_origin", "scheme_origin_port")),
    "set_req_host_header": Feature(18, ("domain_name",)),
    "https_origin_sni": Feature(114, ("enabled", "https_origin_sni")),
    "ipv6": Feature(194, ("switch",), ("region",)),
    "referer_white_list_set": Feature(
        1, ("refer_domain_allow_list",), ("allow_empty", "redirect_url", "disable_ast")
    ),
    "referer_black_list_set": Feature(
        5, ("refer_domain_deny_list",), ("allow_empty", "redirect_url", "disable_ast")
    ),
    "set_resp_header": Feature(
        None,
        ("key", "value"),
        ("header_operation_type", "duplicate", "header_source", "header_destination", "match_all"),
        multi=True,
    ),
}
FEATURES_BY_ID = {f.func_id: name for name, f in FEATURES.items() if f.func_id is not None}
MUTEX = {
    "https_force": "http_force",
    "http_force": "https_force",
    "referer_white_list_set": "referer_black_list_set",
    "referer_black_list_set": "referer_white_list_set",
}
_ON_OFF_ARGS = {
    "enable",
    "enabled",
    "http2",
    "ocsp_stapling",
    "tls10",
    "tls11",
    "tls12",
    "tls13",
    "https_hsts_include_subdomains",
    "switch",
    "allow_empty",
    "disable_ast",
}
_CHOICES = {
    "https_rewrite": ("301", "308"),
    "http_rewrite": ("301", "308"),
    "scheme_origin": ("http", "https", "follow"),
    "ciphersuitegroup": ("all", "strict", "custom"),
}


def validate_feature(function_name: str, args: Sequence[tuple[str, str]]) -> None:
    """Check a feature request: a known function, known and required arguments, values.

    Raises ServiceError InvalidFunctionName.ValueNotSupported,
    InvalidArgName.ValueNotSupported, MissingParameter<arg> or InvalidArgValue.Malformed.
    """
    feature = FEATURES.get(function_name)
    if feature is None:
        raise invalid(
            "InvalidFunctionName.ValueNotSupported",
            f"FunctionName {function_name} is not supported.",
        )
    given = dict(args)
    allowed = set(feature.required) | set(feature.optional)
    for name in given:
        if name not in allowed:
            raise invalid("InvalidArgName.ValueNotSupported", f"ArgName {name} is not supported.")
    for name in feature.required:
        if given.get(name, "") == "":
            raise invalid(
                f"MissingParameter{name}", f"The specified value of ArgName[{name}] is missing."
            )
    for name, value in given.items():
        if not _arg_ok(name, value, given):
            raise invalid(
                "InvalidArgValue.Malformed", f"The specified ArgValue [{name}] is invalid."
            )


def _port_ok(text: str) -> bool:
    return text.isdigit() and 0 < int(text) < 65536


def arg_choices(name: str) -> tuple[str, ...] | None:
    """The values argument `name` may take when they are a fixed set (`on`/`off`, ...)."""
    if name in _ON_OFF_ARGS:
        return ("on", "off")
    return _CHOICES.get(name)


def _arg_ok(name: str, value: str, given: dict[str, str]) -> bool:
    choices = arg_choices(name)
    if choices is not None:
        return value in choices
    if name == "https_hsts_max_age":
        return value.isdigit() and int(value) <= 2**31
    if name == "scheme_origin_port":
        if given.get("scheme_origin", "follow") == "follow":
            parts = value.split(":")
            return len(parts) == 2 and all(_port_ok(p) for p in parts)
        return _port_ok(value)
    return True


def read_back_args(
    function_name: str, args: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    """The arguments DescribeCdnDomainConfigs shows for a config set with `args`: the
    service adds some the caller never sent (documented for `forward_scheme`, whose
    `scheme_origin_port` Terraform's provider filters out of read-backs).

    CHOSEN: which arguments are added and their values: `forward_scheme` gets
    `scheme_origin_port` (80 for http, 443 for https, 80:443 for follow), `HSTS` gets
    `https_hsts_include_subdomains=off`, when the caller left them out.
    """
    given = dict(args)
    extra: list[tuple[str, str]] = []
    if function_name == "forward_scheme" and "scheme_origin_port" not in given:
        origin = given.get("scheme_origin", "follow")
        port = {"http": "80", "https": "443"}.get(origin, "80:443")
        extra.append(("scheme_origin_port", port))
    if function_name == "HSTS" and "https_hsts_include_subdomains" not in given:
        extra.append(("https_hsts_include_subdomains", "off"))
    return (*args, *extra)
