"""Outside `certpilot.cloud`, the code works on the project's own types: from an
adapter module it imports only the adapter class itself, and the `<id>-<region>`
certificate reference is built and read by `CertRef` alone."""

from __future__ import annotations

import ast
import re
from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "shared" / "python" / "certpilot"
ADAPTER_MODULES = re.compile(r"^certpilot\.cloud\.(oss|cdn|cas|fc)$")


def modules_outside_cloud() -> list[Path]:
    return [p for p in LAYER.rglob("*.py") if "cloud" not in p.relative_to(LAYER).parts[:1]]


def test_only_adapter_classes_are_imported_from_adapter_modules() -> None:
    # given every module of the layer outside certpilot.cloud
    offending = []
    for path in modules_outside_cloud():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # then what it imports from an adapter module is an adapter class
            if isinstance(node, ast.ImportFrom) and ADAPTER_MODULES.match(node.module or ""):
                offending += [
                    f"{path.relative_to(LAYER)}: {alias.name}"
                    for alias in node.names
                    if not alias.name.endswith("Adapter")
                ]
    assert offending == []


def test_the_certificate_reference_text_is_built_and_read_in_one_place() -> None:
    # given every module of the layer but the one that owns `<id>-<region>`
    built = re.compile(r"f\"\{[^}]*cas_id\}-\{[^}]*region\}\"")
    offending = [
        str(path.relative_to(LAYER))
        for path in LAYER.rglob("*.py")
        if path.name != "certref.py"
        and (built.search(text := path.read_text(encoding="utf-8")) or 'split("-", 1)' in text)
    ]
    assert offending == []


def test_the_default_region_is_named_once() -> None:
    quoted = [
        str(path.relative_to(LAYER))
        for path in LAYER.rglob("*.py")
        if path.name != "certref.py" and '= "cn-hangzhou"' in path.read_text(encoding="utf-8")
    ]
    assert quoted == []
