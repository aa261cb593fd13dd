"""Corrections to moto's CloudFormation: a table it creates gets the template's
TimeToLiveSpecification and PointInTimeRecoverySpecification, as in AWS (4); the resource types
it does not model deploy as stand-ins (13); a change set's stack has its outputs (14)."""
from __future__ import annotations

from typing import Any

import moto.dynamodb.models as ddb_models
from moto.cloudformation.models import CloudFormationBackend
from moto.dynamodb.models.table import Table

_moto_table_from_cloudformation = Table.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
_moto_execute_change_set = CloudFormationBackend.execute_change_set


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




# Correction 13: resource types moto's CloudFormation does not model (it skipped them, and an
# output or a Sub naming one made the stack's outputs vanish). Each becomes a stand-in: created,
# updated and deleted as a name, answering Ref with its id and GetAtt with a value of the
# attribute's form, so that the template deploys locally as it does in AWS (nothing is served:
# locally devstack/assets.py stands in for the CDN).
UNMODELLED = ("AWS::CloudFront::Distribution", "AWS::CloudFront::OriginAccessControl",
              "AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy")


def _stand_in(resource_type: str) -> type:
    from moto.core.common_models import CloudFormationModel
    from moto.moto_api._internal import mock_random

    def __init__(self: Any, logical_id: str) -> None:
        self.logical_id = logical_id
        self.id = "E" + mock_random.get_random_hex(13).upper()

    def get_cfn_attribute(self: Any, attribute_name: str) -> str:
        return f"{self.id.lower()}.cloudfront.net" if attribute_name == "DomainName" else self.id

    def create(cls: type, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str,
               **kwargs: Any) -> Any:
        return cls(resource_name)

    def update(cls: type, original_resource: Any, *args: Any, **kwargs: Any) -> Any:
        return original_resource

    def delete(cls: type, *args: Any, **kwargs: Any) -> None:
        return None

    return type(resource_type.replace("::", ""), (CloudFormationModel,), {
        "__init__": __init__,
        "cloudformation_type": staticmethod(lambda: resource_type),
        "cloudformation_name_type": staticmethod(lambda: ""),
        "has_cfn_attr": classmethod(lambda cls, attr: True),
        "physical_resource_id": property(lambda self: self.id),
        "get_cfn_attribute": get_cfn_attribute,
        "create_from_cloudformation_json": classmethod(create),
        "update_from_cloudformation_json": classmethod(update),
        "delete_from_cloudformation_json": classmethod(delete),
    })


def model_the_unmodelled() -> None:
    """Register a stand-in for each of UNMODELLED that this moto lacks (before any stack is made)."""
    from moto.cloudformation import parsing

    known = parsing.get_model_map()
    for resource_type in UNMODELLED:
        if resource_type not in known:
            _STAND_INS.append(_stand_in(resource_type))
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


_STAND_INS: list[type] = []  # kept referenced: CloudFormationModel.__subclasses__() holds them weakly


def execute_change_set_with_outputs(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
    """Correction 14: moto executed a change set without computing the stack's outputs from its
    template (a stack made or changed through a change set, as bin/aws/deploy makes it, had
    none); they are computed after it, as CloudFormation reports them."""
    change_set = self.change_sets.get(change_set_name) or next(
        (c for c in self.change_sets.values() if c.change_set_name == change_set_name), None)
    _moto_execute_change_set(self, change_set_name, stack_name=stack_name)  # type: ignore[arg-type]
    if change_set is not None:
        stack = change_set.stack
        stack._parse_template()
        stack.output_map = stack._create_output_map()
