"""aws/policies/cruddur-api.json, the API's own IAM policy (its container's task role): every
DynamoDB call the API makes through its flows is allowed, and nothing more is granted."""
from __future__ import annotations

import fnmatch
import json
import uuid
from urllib.parse import urlsplit

from app import create_app
from lib import ddb as dynamo
from lib.conversations import layout
from lib.config import ROOT
from devstack import access_token
from tests.policies import PolicyRecorder, allowed


def test_the_api_policy_allows_every_call_of_its_flows_and_no_more(settings, fresh_table):
    policy = json.loads((ROOT / "aws" / "policies" / "cruddur-api.json").read_text())
    # a table as the week-5 backend left it, so that the header-less paths run too
    app = create_app(fresh_table.with_(cursor_secret="policy"))
    backend = app.extensions["parts"]
    backend.conversations.table.client.delete_item(TableName=fresh_table.ddb_table, Key=dynamo.serialize(layout.LAYOUT_KEY))
    recorder = PolicyRecorder(backend.conversations.table.client)
    for operation in ("put_item", "batch_write_item"):  # the API's own single writes
        real = getattr(backend.conversations.table.client, operation)

        def noted(real=real, operation=operation, **params):
            if operation == "put_item":
                recorder.needed.add(("PutItem", "table", params["Item"]["pk"]["S"]))
            return real(**params)

        setattr(recorder, operation, noted)
    backend.conversations.table.client = recorder
    real_probe = backend.table_probe.client  # the readiness check's own client
    probe = PolicyRecorder(real_probe)
    probe.describe_table = lambda **params: probe.needed.add(("DescribeTable", "table", None)) or \
        real_probe.describe_table(**params)
    backend.table_probe.client = probe
    try:
        client = app.test_client()
        auth = {h: {"Authorization": f"Bearer {access_token(settings, h)}"} for h in ("bayko", "londo")}
        sent = client.post("/api/messages", headers=auth["bayko"], json={"message": "hi", "handle": "londo"})
        group = sent.json["message_group_uuid"]
        key = {"Idempotency-Key": str(uuid.uuid4())}
        assert client.post("/api/messages", headers={**auth["londo"], **key},
                           json={"message": "back", "message_group_uuid": group}).status_code == 200
        assert client.post("/api/messages", headers={**auth["londo"], **key},
                           json={"message": "back", "message_group_uuid": group}).status_code == 200
        assert client.get("/api/message_groups", headers=auth["bayko"]).status_code == 200
        assert client.get(f"/api/messages/{group}", headers=auth["londo"]).status_code == 200
        assert client.get(f"/api/messages/{uuid.uuid4()}", headers=auth["londo"]).status_code == 404
        assert client.post(f"/api/messages/{group}/read", headers=auth["londo"]).status_code == 200
        assert client.get("/api/message_groups/unread", headers=auth["londo"]).status_code == 200
        assert client.get("/api/ready").status_code == 200
        signed = client.post("/avatars/key_upload", headers=auth["bayko"], json={"extension": "png"})
        assert signed.status_code == 200
    finally:
        backend.db.close()
    recorder.needed |= probe.needed
    actions = {action for action, _, _ in recorder.needed}
    assert actions == {"Query", "GetItem", "PutItem", "UpdateItem", "DescribeTable"}, recorder.needed
    for action, resource, key in recorder.needed:
        assert allowed(policy, action, resource, key), (action, resource, key)
    granted = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    # the one S3 action: the avatar upload URL the API signs is a PutObject of its signer's
    assert granted == {f"dynamodb:{a}" for a in actions} | {"s3:PutObject"}
    s3 = [s for s in policy["Statement"] if s["Action"] == "s3:PutObject"]
    key = urlsplit(signed.json["url"]).path.split("/", 2)[2]  # /<bucket>/<key>, path-style
    assert len(s3) == 1 and fnmatch.fnmatch(f"arn:aws:s3:::{fresh_table.assets_bucket}/{key}",
                                            s3[0]["Resource"].replace("${ASSETS_BUCKET}", fresh_table.assets_bucket))
    assert not allowed(policy, "GetItem", "table", "SOMETHING#else")
    assert not allowed(policy, "DeleteItem", "table", f"MSG#{group}")
