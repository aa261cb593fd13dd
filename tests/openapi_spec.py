"""Reading openapi.yml: its operations, its $refs, its error responses (for the tests that hold
the spec to itself and to the code)."""
from __future__ import annotations

import yaml

from lib import config

SPEC_PATH = config.ROOT / "openapi.yml"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def load() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


def resolve(spec: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def spec_operations(spec: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in spec["paths"].items() for method in item
            if method in HTTP_METHODS}


def error_responses(spec: dict):
    """(operation, status, resolved response) of every 4xx and 5xx response."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            for status, response in operation["responses"].items():
                if str(status)[0] in "45":
                    yield f"{method.upper()} {path}", str(status), resolve(spec, response)


def enum_of_error_body(spec: dict, response: dict) -> list[str]:
    schema = resolve(spec, response["content"]["application/json"]["schema"])
    assert schema["type"] == "array" and schema.get("minItems", 0) >= 1
    items = resolve(spec, schema["items"])
    assert items["type"] == "string"
    return items["enum"]
