"""s.yaml as Serverless Devs reads it, for the tests that hold it to the code: the parsed
file, its expressions resolved as `s deploy` would resolve them, each function's
handler and frame loaded as FC loads them, and the sample events of `events/`."""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from certpilot.cli.invoke import load_handler
from certpilot.core.settings import Settings
from certpilot.handler import Frame, Invocation

REPO = Path(__file__).resolve().parents[1]
S_YAML = REPO / "s.yaml"
EVENTS = REPO / "events"
# The deploying shell's environment the tests assume: the account every sample names.
ACCOUNT = "1234567890123456"
DEPLOY_ENV = {"ALIBABA_CLOUD_ACCOUNT_ID": ACCOUNT}
# Serverless Devs 3 expressions s.yaml uses: `${vars.name}`, `${env('NAME')}`,
# `${env('NAME', 'default')}`.
EXPRESSION = re.compile(r"\$\{([^}]*)\}")
VAR = re.compile(r"^\s*vars\.([A-Za-z0-9_]+)\s*$")
ENV = re.compile(r"^\s*env\(\s*'([A-Za-z0-9_]+)'\s*(?:,\s*'([^']*)'\s*)?\)\s*$")


@functools.cache
def spec() -> dict[str, Any]:
    """s.yaml, parsed (YAML only: expressions left as written)."""
    loaded: dict[str, Any] = yaml.safe_load(S_YAML.read_text(encoding="utf-8"))
    return loaded


def resolve(value: Any, environ: Mapping[str, str] = DEPLOY_ENV) -> Any:
    """`value` with every expression replaced as `s deploy` would, in a shell holding
    `environ`.

    Raises:
        KeyError: an `env('NAME')` without default whose NAME `environ` lacks (the
            deploy would stop there), or an unknown var.
        ValueError: an expression of another kind.
    """
    if isinstance(value, dict):
        return {k: resolve(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, environ) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        text = match.group(1)
        var = VAR.match(text)
        if var:
            return str(resolve(spec()["vars"][var.group(1)], environ))
        env = ENV.match(text)
        if env:
            name, default = env.groups()
            return environ[name] if default is None else environ.get(name, default)
        raise ValueError(f"an expression these tests do not know: ${{{text}}}")

    return EXPRESSION.sub(one, value)


@dataclass(frozen=True)
class Function:
    """One fc3 resource of s.yaml: its name there and its props (as written)."""

    name: str
    props: dict[str, Any]

    @property
    def resolved(self) -> dict[str, Any]:
        """The props with every expression resolved."""
        resolved: dict[str, Any] = resolve(self.props)
        return resolved

    @property
    def environment(self) -> dict[str, str]:
        """The function's environment as FC gets it."""
        environment: dict[str, str] = self.resolved.get("environmentVariables") or {}
        return environment

    @property
    def code(self) -> Path:
        """The function's code folder."""
        return (REPO / self.props["code"]).resolve()

    def handler(self) -> Callable[[bytes, Any], Any]:
        """The entry point `handler: <module>.<function>` names, loaded as FC loads it.

        Raises:
            AssertionError: the handler is not `<module>.<function>`.
        """
        module, _, attribute = self.props["handler"].partition(".")
        assert module and attribute, self.props["handler"]
        return _load(str(self.code / f"{module}.py"), self.name, attribute)

    def frame(self) -> Frame[Any]:
        """The certpilot handler frame behind the entry point (its `parse` is the one
        the handler applies to every event)."""
        frames = [v for v in self.handler().__globals__.values() if isinstance(v, Frame)]
        assert len(frames) == 1, f"{self.name}: expected one handler frame, got {frames}"
        return frames[0]

    def invocation(self) -> Invocation:
        """An invocation as FC would start it, with the settings s.yaml deploys."""
        context = fc_context(self.props["functionName"])
        settings = Settings.from_env(self.environment)
        return Invocation(self.name, context, context.request_id, settings)

    def triggers(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The function's triggers (of `kind` only, when given), as written."""
        triggers: list[dict[str, Any]] = self.props.get("triggers") or []
        return [t for t in triggers if kind is None or t["triggerType"] == kind]


@functools.cache
def _load(path: str, name: str, attribute: str) -> Callable[[bytes, Any], Any]:
    loaded: Callable[[bytes, Any], Any] = load_handler(Path(path), f"syaml_{name}")
    assert loaded.__name__ == attribute, f"{path} has no {attribute}"
    return loaded


def functions() -> dict[str, Function]:
    """The fc3 resources of s.yaml, by resource name."""
    resources = spec()["resources"]
    return {
        name: Function(name, resource["props"])
        for name, resource in resources.items()
        if resource.get("component") == "fc3"
    }


def fc_context(function_name: str) -> SimpleNamespace:
    """The context FC hands a function (no credentials: parsing needs none)."""
    return SimpleNamespace(
        request_id=str(uuid.uuid4()),
        credentials=None,
        function=SimpleNamespace(name=function_name, handler="index.handler"),
        region="cn-hangzhou",
    )


@dataclass(frozen=True)
class Sample:
    """A sample event of `events/`, named `<function>.<shape>[-<variant>].json`."""

    path: Path

    @property
    def function(self) -> str:
        """The s.yaml resource (function) the sample is for."""
        return self.path.name.split(".")[0]

    @property
    def raw(self) -> bytes:
        """The event as FC hands it over: bytes."""
        return self.path.read_bytes()

    @property
    def event(self) -> Any:
        """The event, decoded."""
        return json.loads(self.raw)

    @property
    def is_cloudevent(self) -> bool:
        """Whether EventBridge delivers it (a CloudEvent), so a rule must match it."""
        return isinstance(self.event, dict) and "specversion" in self.event

    @property
    def is_timer(self) -> bool:
        """Whether FC's timer delivers it."""
        return isinstance(self.event, dict) and "triggerTime" in self.event


def samples() -> list[Sample]:
    """Every sample event of `events/`."""
    return [Sample(p) for p in sorted(EVENTS.glob("*.json"))]
