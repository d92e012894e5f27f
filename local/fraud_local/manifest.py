"""Read a FraudPipeline manifest and check it as the API server would, before anything starts.

The structural schema is the CRD's (`fraud_operator.schema.build_crd`), with its defaults filled
in; its CEL rules are evaluated by the Python equivalents in `CEL_EQUIVALENTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator

from fraud_operator.schema import GROUP, KIND, VERSION, build_crd, with_defaults

RULES = ("impossibleTravel", "spendingSpree", "cardTesting", "velocity", "amountThreshold")

# CEL expression of the CRD -> (Python check of `self`, or None for a transition rule that only
# applies to updates: a local run always creates).
CEL_EQUIVALENTS: dict[str, Callable[[Any], bool] | None] = {
    "self.metadata.name.size() <= 40": lambda s: len(s["metadata"]["name"]) <= 40,
    "self.partitions >= oldSelf.partitions": None,
    "self == oldSelf": None,
    "self.model.enabled || " + " || ".join(f"self.rules.{r}.enabled" for r in RULES): (
        lambda s: s["model"]["enabled"] or any(s["rules"][r]["enabled"] for r in RULES)
    ),
    "self.smallAmountMax < self.largeAmountMin": lambda s: (
        s["smallAmountMax"] < s["largeAmountMin"]
    ),
    "!self.enabled || self.uri != ''": lambda s: not s["enabled"] or s["uri"] != "",
    "self.all(k, k.startsWith('spark.'))": lambda s: all(k.startswith("spark.") for k in s),
    "self.mode != 'operator' || has(self.instanceSelector)": (
        lambda s: s["mode"] != "operator" or "instanceSelector" in s
    ),
}


class ManifestError(ValueError):
    """The manifest is not a valid FraudPipeline; the message names the field."""


@dataclass(frozen=True)
class Pipeline:
    name: str
    namespace: str
    spec: dict  # every default filled in


def crd_schema() -> dict:
    return build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _walk(schema: dict, value: Any, path: str) -> Iterator[tuple[str, dict, Any]]:
    """(path, schema, value) for every value present in the document, depth first."""
    yield path, schema, value
    if isinstance(value, dict):
        for key, child in value.items():
            if key in schema.get("properties", {}):
                yield from _walk(schema["properties"][key], child, f"{path}.{key}".lstrip("."))
            elif isinstance(schema.get("additionalProperties"), dict):
                yield from _walk(schema["additionalProperties"], child, f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for index, child in enumerate(value):
            yield from _walk(schema["items"], child, f"{path}[{index}]")


def problems(document: Any) -> list[str]:
    """Every problem of a FraudPipeline document, each as 'field.path: message'."""
    if not isinstance(document, dict):
        return ["(document): expected a YAML mapping (a FraudPipeline object)"]
    expected = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND}
    found = [
        f"{key}: expected {want!r}, got {document.get(key)!r}"
        for key, want in expected.items()
        if document.get(key) != want
    ]
    if found:
        return found
    schema = crd_schema()
    document = {
        **document,
        "spec": with_defaults(schema["properties"]["spec"], document.get("spec")),
    }
    for error in Draft4Validator(schema).iter_errors(document):
        where = ".".join(str(part) for part in error.absolute_path) or "(document)"
        found.append(f"{where}: {error.message}")
    if not isinstance(document.get("metadata", {}).get("name"), str):
        found.append("metadata.name: required")
    for path, node, value in _walk(schema, document, ""):
        if isinstance(value, dict) and "properties" in node and path != "metadata":
            known = set(node["properties"]) | (set() if path else {"apiVersion", "kind"})
            found += [
                f"{path}.{key}".lstrip(".") + ": unknown field" for key in value if key not in known
            ]
    if found:
        return found
    for path, node, value in _walk(schema, document, ""):
        for validation in node.get("x-kubernetes-validations", []):
            check = CEL_EQUIVALENTS[validation["rule"]]
            if check is not None and not check(value):
                field = path + validation.get("fieldPath", "")
                found.append(f"{field.lstrip('.') or 'metadata.name'}: {validation['message']}")
    return found


def load_pipeline(path: Path) -> Pipeline:
    """The pipeline of the manifest at `path`, or a ManifestError naming every bad field."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ManifestError(f"{path}: cannot read the manifest: {error}") from None
    found = problems(document)
    if found:
        raise ManifestError(f"{path}: not a valid FraudPipeline:\n  " + "\n  ".join(found))
    spec = with_defaults(crd_schema()["properties"]["spec"], document["spec"])
    metadata = document["metadata"]
    return Pipeline(metadata["name"], metadata.get("namespace", "default"), spec)
