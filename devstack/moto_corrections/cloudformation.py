"""Correction 4 to moto's CloudFormation: a table it creates gets the template's
TimeToLiveSpecification and PointInTimeRecoverySpecification, as in AWS."""
from __future__ import annotations

from typing import Any

import moto.dynamodb.models as ddb_models
from moto.dynamodb.models.table import Table

_moto_table_from_cloudformation = Table.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]


def table_from_cloudformation(cls: type, resource_name: str, cloudformation_json: dict[str, Any],
                              account_id: str, region_name: str, **kwargs: Any) -> Table:
    table = _moto_table_from_cloudformation(cls, resource_name, cloudformation_json, account_id,
                                            region_name, **kwargs)
    properties = cloudformation_json.get("Properties", {})
    backend = ddb_models.dynamodb_backends[account_id][region_name]
    if properties.get("TimeToLiveSpecification"):
        backend.update_time_to_live(table.name, properties["TimeToLiveSpecification"])
    if properties.get("PointInTimeRecoverySpecification"):
        backend.update_continuous_backups(table.name, properties["PointInTimeRecoverySpecification"])
    return table


