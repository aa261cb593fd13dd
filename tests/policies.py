"""What an IAM policy of aws/policies/ allows, for the tests that run code against it: a client
that notes each DynamoDB action a call needs as IAM sees it, and a check of one such action
against a policy's statements (its resources and LeadingKeys conditions)."""
from __future__ import annotations

from typing import Any


class PolicyRecorder:
    """The Lambda's client, noting each DynamoDB action it needs as IAM sees it: (action, resource
    kind, leading key)."""

    def __init__(self, client: Any):
        self.client = client
        self.needed: set[tuple[str, str, str | None]] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def get_item(self, **params: Any) -> Any:
        self.needed.add(("GetItem", "table", params["Key"]["pk"]["S"]))
        return self.client.get_item(**params)

    def query(self, **params: Any) -> Any:
        if "IndexName" in params:
            self.needed.add(("Query", f"index/{params['IndexName']}", None))
        else:
            self.needed.add(("Query", "table", params["ExpressionAttributeValues"][":v0"]["S"]))
        return self.client.query(**params)

    def put_item(self, **params: Any) -> Any:
        self.needed.add(("PutItem", "table", params["Item"]["pk"]["S"]))
        return self.client.put_item(**params)

    def delete_item(self, **params: Any) -> Any:
        self.needed.add(("DeleteItem", "table", params["Key"]["pk"]["S"]))
        return self.client.delete_item(**params)

    def update_item(self, **params: Any) -> Any:
        self.needed.add(("UpdateItem", "table", params["Key"]["pk"]["S"]))
        return self.client.update_item(**params)


def allowed(policy: dict, action: str, resource: str, leading_key: str | None) -> bool:
    from fnmatch import fnmatchcase

    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/cruddur-messages"
    wanted = arn if resource == "table" else f"{arn}/{resource}"
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        pattern = (statement["Resource"].replace("${AWS_REGION}", "us-east-1")
                   .replace("${AWS_ACCOUNT_ID}", "123456789012"))
        if f"dynamodb:{action}" not in actions or not fnmatchcase(wanted, pattern):
            continue
        keys = statement.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        if keys is None or (leading_key is not None and any(fnmatchcase(leading_key, k) for k in keys)):
            return True
    return False
