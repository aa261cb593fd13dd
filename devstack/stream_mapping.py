"""The stream mappings (aws/template.yaml: StreamMapping for the row mover, EventsMapping for the
live events), applied locally as Lambda applies them in AWS: each one's batch size, and its event
filter (a record that matches none of the patterns never
reaches the function and counts as processed). Read from the template itself, so that the local
stream worker and the deployed mapping batch and filter alike.

Of Lambda's filter rules this implements what a DynamoDB stream filter needs: a pattern is a
JSON object whose keys follow the record's; a list of values matches a field equal to one of
them; `{"prefix": s}` matches a string that starts with s; `{"exists": b}` matches a field
present (or absent); nested objects match nested fields.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import yaml

from lib.config import ROOT

TEMPLATE = ROOT / "aws" / "template.yaml"
# The template's mappings: the stream Lambda's (row mover) and the events Lambda's.
MOVER = "StreamMapping"
EVENTS = "EventsMapping"
_ABSENT = object()


class _CloudFormation(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, ...) read as plain values."""


_CloudFormation.add_multi_constructor(
    "!", lambda loader, suffix, node: (loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
                                       else loader.construct_sequence(node)
                                       if isinstance(node, yaml.SequenceNode)
                                       else loader.construct_mapping(node)))


def resource(name: str, template: Path = TEMPLATE) -> dict[str, Any]:
    """The Properties of one of the template's resources."""
    return yaml.load(template.read_text(), Loader=_CloudFormation)["Resources"][name]["Properties"]


def _mapping(template: Path, mapping: str) -> dict[str, Any]:
    return resource(mapping, template)


def batch_size(template: Path = TEMPLATE, mapping: str = MOVER) -> int:
    """The most records one invocation is given (Lambda's default, 100, when the template sets
    none). A GetRecords call returns at most 1,000, so locally one call is one batch."""
    return int(_mapping(template, mapping).get("BatchSize", 100))


def stream_patterns(template: Path = TEMPLATE, mapping: str = MOVER) -> list[dict[str, Any]]:
    """The patterns of a mapping's FilterCriteria (none: every record is delivered)."""
    criteria = _mapping(template, mapping).get("FilterCriteria") or {}
    return [json.loads(f["Pattern"]) for f in criteria.get("Filters", [])]


def matches(pattern: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Whether a record (as the function receives it) matches one pattern."""
    for key, wanted in pattern.items():
        value = record.get(key, _ABSENT) if isinstance(record, Mapping) else _ABSENT
        if isinstance(wanted, Mapping):
            if value is _ABSENT or not isinstance(value, Mapping) or not matches(wanted, value):
                return False
        elif not any(_matches_one(rule, value) for rule in wanted):
            return False
    return True


def _matches_one(rule: Any, value: Any) -> bool:
    if isinstance(rule, Mapping):
        if "exists" in rule:
            return (value is not _ABSENT) == bool(rule["exists"])
        if "prefix" in rule:
            return isinstance(value, str) and value.startswith(rule["prefix"])
        raise ValueError(f"a filter rule this worker does not know: {rule}")
    return value is not _ABSENT and value == rule


def delivered(patterns: list[dict[str, Any]], record: Mapping[str, Any]) -> bool:
    """Whether the mapping hands this record to the function."""
    return not patterns or any(matches(p, record) for p in patterns)
