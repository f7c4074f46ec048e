"""s.yaml against the code: the three functions and their handlers, the layer `make layer`
builds, FC's limits, the asynchronous invocation settings, the timer, and each
function's environment against the settings it reads (README "Settings", "read by").

Triggers and events: tests/unit/test_s_yaml_triggers.py.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import pytest

from certpilot.core import settings
from certpilot.handler import Frame
from tests.s_yaml_spec import ACCOUNT, REPO, S_YAML, Function, functions, resolve, spec

FUNCTIONS = functions()
NAMES = sorted(FUNCTIONS)
PACKAGE = REPO / "shared" / "python"

# Settings a function reads that s.yaml must not set, and why.
NOT_DEPLOYED = {
    settings.ENDPOINT: "sends every cloud client to the emulator (tests, demo, sandbox)",
    settings.EDGE_HTTPS: "probes the emulator's edge instead of each domain's",
    settings.EDGE_HTTP: "probes the emulator's edge instead of each domain's",
    settings.CA_BUNDLE: "a path on the function's disk; in FC the layer's certifi is the store",
    settings.ACCESS_KEY_ID: "FC hands the role's STS credentials in context.credentials",
    settings.ACCESS_KEY_SECRET: "FC hands the role's STS credentials in context.credentials",
    settings.SECURITY_TOKEN: "FC hands the role's STS credentials in context.credentials",
}
KNOWN = set(settings.ALL_VARIABLES)
# The secret settings: those `Settings` keeps as `Secret`.
SECRETS = {
    value
    for name, value in vars(settings).items()
    if name.isupper()
    and isinstance(value, str)
    and "Secret"
    in str(getattr(settings.Settings.__dataclass_fields__.get(name.lower()), "type", ""))
}

# FC 3.0 limits (function configuration and asynchronous invocation).
MEMORY_MB = (128, 32768)  # in steps of 64 MB
TIMEOUT_S = (1, 86400)
ASYNC_RETRIES = (0, 8)
ASYNC_EVENT_AGE_S = (1, 604800)


def test_s_yaml_is_a_serverless_devs_3_project_of_three_fc3_functions() -> None:
    # given s.yaml, then it is edition 3.0.0 and deploys the three functions with fc3
    assert spec()["edition"] == "3.0.0"
    assert set(spec()["resources"]) == set(FUNCTIONS)
    assert NAMES == ["check-expiry", "deploy-cert", "enforce-https"]
    names = [f.props["functionName"] for f in FUNCTIONS.values()]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("name", NAMES)
def test_each_handler_is_a_real_index_handler_over_its_frame(name: str) -> None:
    # given the function's code folder and handler
    function = FUNCTIONS[name]
    module, _, attribute = function.props["handler"].partition(".")
    # then the folder is functions/<name with underscores>, holding <module>.py
    assert function.code == REPO / "functions" / name.replace("-", "_")
    assert (function.code / f"{module}.py").is_file()
    # and loading it as FC does gives a callable named as the handler says, over the
    # certpilot frame of this very function
    handler = function.handler()
    assert callable(handler) and handler.__name__ == attribute
    frame = function.frame()
    assert isinstance(frame, Frame) and frame.name == name


@pytest.mark.parametrize("name", NAMES)
def test_memory_and_timeout_are_within_fc_limits(name: str) -> None:
    props = FUNCTIONS[name].props
    memory, timeout = props["memorySize"], props["timeout"]
    assert isinstance(memory, int) and MEMORY_MB[0] <= memory <= MEMORY_MB[1]
    assert memory % 64 == 0
    assert isinstance(timeout, int) and TIMEOUT_S[0] <= timeout <= TIMEOUT_S[1]
    # a run waits for the edge at most CERTPILOT_VERIFY_DEADLINE: it must fit the timeout
    deadline = float(FUNCTIONS[name].environment.get(settings.VERIFY_DEADLINE, "0"))
    assert deadline < timeout


def _layer_build_text() -> str:
    """The `layer` target of the Makefile, and the scripts it runs."""
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^layer:.*\n((?:\t.*\n|\n(?=\t))*)", makefile, re.MULTILINE)
    assert recipe is not None, "the Makefile has no layer target"
    scripts = [REPO / p for p in re.findall(r"scripts/[\w./-]+\.py", recipe.group(1))]
    return recipe.group(1) + "".join(p.read_text(encoding="utf-8") for p in scripts)


def test_every_function_mounts_the_layer_make_layer_builds() -> None:
    # given the zip `make layer` writes (vars.layerZip), the publish command documented
    # in s.yaml, and each function's layer
    layer_zip = spec()["vars"]["layerZip"]
    text = S_YAML.read_text(encoding="utf-8")
    publish = re.search(r"layer publish --code (\S+).*?--layer-name (\S+)", text, re.DOTALL)
    assert publish is not None, "s.yaml documents no `layer publish`"
    # then the documented publish uploads that zip as the layer the functions name
    assert Path(publish.group(1)) == Path(layer_zip)
    layer_name = spec()["vars"]["layerName"]
    assert publish.group(2) == layer_name
    arns = set()
    for function in FUNCTIONS.values():
        [arn] = function.resolved["layers"]
        region = function.resolved["region"]
        assert re.fullmatch(rf"acs:fc:{region}:{ACCOUNT}:layers/{layer_name}/versions/\d+", arn)
        arns.add(arn)
    assert len(arns) == 1
    # and `make layer` writes that zip
    build = _layer_build_text()
    if ".zip" not in build:
        pytest.skip("make layer builds no zip yet (issue 12, the layer)")
    folder, name = Path(layer_zip).parts
    assert f"{folder}/{name}" in build or f'"{folder}" / "{name}"' in build


def _built_for(text: str) -> set[str]:
    """The Python versions (`3.10`) the layer build names: pip's `--python-version`, a
    `PYTHON_VERSION = (3, 10)` constant, byte code tags (`cpython-310`)."""
    found = set(re.findall(r"python-version[\"',\s=]+(\d+\.\d+)", text))
    found |= {f"{a}.{b}" for a, b in re.findall(r"PYTHON_VERSION\s*=\s*\((\d+),\s*(\d+)\)", text)}
    found |= {f"3.{minor}" for minor in re.findall(r"cpython-3(\d+)", text)}
    return found


def test_the_runtime_is_the_one_the_layer_is_built_for() -> None:
    runtime = spec()["vars"]["runtime"]
    assert {f.resolved["runtime"] for f in FUNCTIONS.values()} == {runtime}
    built_for = _built_for(_layer_build_text())
    assert built_for and {f"python{v}" for v in built_for} == {runtime}, built_for
    text = S_YAML.read_text(encoding="utf-8")
    assert f"--compatible-runtime {runtime}" in text


@pytest.mark.parametrize("name", NAMES)
def test_the_role_is_the_account_role_from_vars(name: str) -> None:
    role = FUNCTIONS[name].resolved["role"]
    assert role == f"acs:ram::{ACCOUNT}:role/{spec()['vars']['roleName']}"


@pytest.mark.parametrize("name", NAMES)
def test_asynchronous_invocations_retry_and_keep_their_failures(name: str) -> None:
    # given the function's asynchronous invocation settings
    function = FUNCTIONS[name]
    config = function.resolved["asyncInvokeConfig"]
    # then retries and event age are within FC's ranges
    assert ASYNC_RETRIES[0] <= config["maxAsyncRetryAttempts"] <= ASYNC_RETRIES[1]
    assert ASYNC_EVENT_AGE_S[0] <= config["maxAsyncEventAgeInSeconds"] <= ASYNC_EVENT_AGE_S[1]
    # and an invocation that failed them all goes to a destination in this account
    destination = config["destinationConfig"]["onFailure"]["destination"]
    region = function.resolved["region"]
    assert re.fullmatch(rf"acs:(mns|fc|eventbridge|mq):{region}:{ACCOUNT}:\S+", destination)


def test_check_expiry_invokes_the_deploy_cert_s_yaml_deploys() -> None:
    environment = FUNCTIONS["check-expiry"].environment
    assert environment[settings.DEPLOY_FUNCTION] == FUNCTIONS["deploy-cert"].props["functionName"]


# -- the timer ----------------------------------------------------------------------

_FIELDS = (  # FC cron: seconds, minutes, hours, day of month, month, day of week
    (0, 59, ()),
    (0, 59, ()),
    (0, 23, ()),
    (1, 31, ()),
    (1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    (0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)


def _cron_field_ok(text: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    def value(part: str) -> int | None:
        if part.upper() in names:
            return names.index(part.upper()) + low
        return int(part) if part.isdigit() and low <= int(part) <= high else None

    for item in text.split(","):
        base, _, step = item.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            return False
        if base in ("*", "?"):
            continue
        first, _, last = base.partition("-")
        start, end = value(first), value(last) if last else None
        if start is None or (last and (end is None or end < start)):
            return False
    return True


def cron_problem(expression: str) -> str | None:
    """What is wrong with an FC timer cron expression (`CRON_TZ=<zone> ` and six fields,
    seconds first); None when it is valid."""
    zone, _, fields = expression.partition(" ")
    if not zone.startswith("CRON_TZ="):
        return "no CRON_TZ="
    if zone.removeprefix("CRON_TZ=") not in available_timezones():
        return "unknown time zone"
    parts = fields.split()
    if len(parts) != 6:
        return f"{len(parts)} fields, not 6"
    for part, (low, high, names) in zip(parts, _FIELDS, strict=True):
        if not _cron_field_ok(part, low, high, names):
            return f"bad field {part!r}"
    return None


@pytest.mark.parametrize(
    ("expression", "valid"),
    [
        ("CRON_TZ=Asia/Shanghai 0 0 2 * * *", True),
        ("CRON_TZ=UTC 0 30 1 ? * MON-FRI", True),
        ("CRON_TZ=Europe/Berlin 0 */15 8-18 1,15 JAN-JUN *", True),
        ("0 0 2 * * *", False),  # no time zone
        ("CRON_TZ=Mars/Olympus 0 0 2 * * *", False),
        ("CRON_TZ=Asia/Shanghai 0 2 * * *", False),  # five fields: no seconds
        ("CRON_TZ=Asia/Shanghai 60 0 2 * * *", False),
        ("CRON_TZ=Asia/Shanghai 0 0 24 * * *", False),
        ("CRON_TZ=Asia/Shanghai 0 0 2 0 * *", False),
        ("CRON_TZ=Asia/Shanghai 0 0 2 * 13 *", False),
        ("CRON_TZ=Asia/Shanghai 0 0 2 * * 7", False),
        ("CRON_TZ=Asia/Shanghai 0 0 5-2 * * *", False),
        ("CRON_TZ=Asia/Shanghai 0 */0 2 * * *", False),
    ],
)
def test_the_cron_check_knows_fc_cron(expression: str, valid: bool) -> None:
    assert (cron_problem(expression) is None) is valid


def test_check_expiry_runs_daily_at_a_configurable_time_and_zone() -> None:
    # given check-expiry's one timer
    [timer] = FUNCTIONS["check-expiry"].triggers("timer")
    config = timer["triggerConfig"]
    # then its schedule and time zone come from vars
    assert "${vars.timeZone}" in config["cronExpression"]
    assert "${vars.schedule}" in config["cronExpression"]
    # and resolve to a valid FC cron in that zone, firing once a day
    expression = resolve(config["cronExpression"])
    assert cron_problem(expression) is None, expression
    ZoneInfo(spec()["vars"]["timeZone"])
    seconds, minutes, hours, day, month, weekday = expression.split()[1:]
    assert all(f.isdigit() for f in (seconds, minutes, hours))
    assert day in ("*", "?") and month == "*" and weekday in ("*", "?")
    assert config["enable"] is True


# -- the environment ----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_environment_sets_known_settings_with_valid_values(name: str) -> None:
    # given the function's environment as written and as deployed
    written = FUNCTIONS[name].props["environmentVariables"]
    deployed = FUNCTIONS[name].environment
    # then every name is a setting certpilot reads, each value a string (FC's type)
    assert set(written) <= KNOWN, set(written) - KNOWN
    assert all(isinstance(v, str) for v in written.values())
    # and no emulator override or credential is deployed
    assert not set(written) & set(NOT_DEPLOYED)
    # and the deployed values are valid settings
    settings.Settings.from_env(deployed)
    assert deployed[settings.ACCOUNT_ID] == ACCOUNT


@pytest.mark.parametrize("name", NAMES)
def test_secrets_come_from_the_deploying_shell_never_from_the_file(name: str) -> None:
    # given the function's environment as written
    written = FUNCTIONS[name].props["environmentVariables"]
    # then each secret setting is `${env('<its name>', '')}`: off unless the shell has it
    for variable in SECRETS & set(written):
        assert written[variable] == f"${{env('{variable}', '')}}", variable
    # and a secret in the shell reaches the function
    shell = {**resolve_env_names(written), "ALIBABA_CLOUD_ACCOUNT_ID": ACCOUNT}
    deployed = resolve(written, shell)
    for variable in SECRETS & set(written):
        assert deployed[variable] == shell[variable]


def resolve_env_names(written: dict[str, str]) -> dict[str, str]:
    """A shell environment holding a distinct value for every variable `written` reads."""
    names = re.findall(r"env\('([A-Z0-9_]+)'", " ".join(written.values()))
    return {n: f"value-of-{n.lower()}" for n in names}


def test_the_secret_settings_are_known() -> None:
    # the secret set above comes from Settings' types: it must not be empty by accident
    assert {settings.DINGTALK_WEBHOOK, settings.WEBHOOK_SECRET} <= SECRETS


# A "read by" reference of the README's settings table (see test_docs_settings).
_REFERENCE = re.compile(r"`([a-z_]+(?:\.[a-z_]+)*|[a-z_]+(?:/[a-z_]+)+)`")
_VARIABLE = re.compile(r"`((?:CERTPILOT|ALIBABA_CLOUD)_[A-Z0-9_]+)`")


def _settings_rows() -> list[tuple[set[str], list[str]]]:
    """(variables, "read by" references) of each row of the README's settings table."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Settings\n")
    end = text.find("\n## ", start + 1)
    rows = [
        line.split("|")
        for line in text[start : end if end != -1 else None].splitlines()
        if line.startswith("| `")
    ]
    return [(set(_VARIABLE.findall(c[1])), _REFERENCE.findall(c[4])) for c in rows]


def _module_file(module: str) -> Path | None:
    base = PACKAGE.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else None


@functools.cache
def _imports(path: Path) -> frozenset[str]:
    """The certpilot modules `path` imports at run time (anywhere in it: a lazy import
    runs when its function does), not those imported for type checking only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for statement in node.body
        for inner in ast.walk(statement)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("certpilot")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("certpilot"):
            assert node.module is not None
            found.add(node.module)
            found |= {
                f"{node.module}.{a.name}"
                for a in node.names
                if _module_file(f"{node.module}.{a.name}")
            }
    return frozenset(found)


def _closure(function: Function) -> set[str]:
    """Every certpilot module a function's handler may import (and its packages)."""
    seen: set[str] = set()
    pending = list(_imports(function.code / "index.py"))
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        pending += [".".join(parts[:i]) for i in range(1, len(parts))]
        path = _module_file(module)
        if path is not None:
            pending += _imports(path)
    return seen


def read_by(function: Function) -> set[str]:
    """The settings `function` reads, by the README's "read by" column: those of each
    row naming a part of certpilot the function's handler imports, or its folder."""
    modules = _closure(function)
    folder = function.code.relative_to(REPO).as_posix()
    found: set[str] = set()
    for variables, references in _settings_rows():
        for reference in references:
            module = f"certpilot.{reference}"
            if reference == folder or any(
                m == module or m.startswith(module + ".") for m in modules
            ):
                found |= variables
    return found


def test_read_by_sees_what_each_handler_imports() -> None:
    # the closure the next test relies on: each job's handler reaches its job and the
    # frame, deploy-cert's reaches no other job, check-expiry's reaches the enforce-https
    # engine it restores drift with
    closures = {name: _closure(f) for name, f in FUNCTIONS.items()}
    for name, modules in closures.items():
        assert f"certpilot.jobs.{name.replace('-', '_')}" in modules
        assert "certpilot.handler" in modules and "certpilot.cloud.clients" in modules
    assert not any(m.startswith("certpilot.jobs.check_expiry") for m in closures["deploy-cert"])
    assert "certpilot.jobs.enforce_https.engine" in closures["check-expiry"]
    assert not any(m.startswith("certpilot.cli") for c in closures.values() for m in c)


@pytest.mark.parametrize("name", NAMES)
def test_each_function_gets_exactly_the_settings_it_reads(name: str) -> None:
    # given what the function reads (README "read by" over its imports), less what is
    # never deployed, and what s.yaml sets for it
    function = FUNCTIONS[name]
    wanted = read_by(function) - set(NOT_DEPLOYED)
    written = set(function.props["environmentVariables"])
    # then it sets every one of them, and nothing the function does not read
    assert wanted <= written, sorted(wanted - written)
    assert written <= wanted, sorted(written - wanted)


def test_notification_and_report_settings_reach_check_expiry_only() -> None:
    only_sweep = {
        settings.REPORT_BUCKET,
        settings.REPORT_PREFIX,
        settings.NOTIFY_MIN_SEVERITY,
        settings.DINGTALK_WEBHOOK,
        settings.DEPLOY_FUNCTION,
    }
    assert only_sweep <= set(FUNCTIONS["check-expiry"].props["environmentVariables"])
    for name in ("deploy-cert", "enforce-https"):
        assert not only_sweep & set(FUNCTIONS[name].props["environmentVariables"])
