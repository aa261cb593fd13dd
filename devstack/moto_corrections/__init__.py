"""moto corrected to behave as the AWS services do, one module per service it corrects. All of it
is local-only (nothing here runs against AWS); devstack/moto_server.py starts moto's server with
it (`install()`), and `check_moto()` fails loudly, naming what changed, when a moto upgrade no
longer has what a correction relies on (the corrections read moto's arguments by name, never by
position).

Each correction, its reason in one line, where it lives, and the moto version it was measured on
(CORRECTIONS, below, is the same list):

| # | service | module | why | measured on |
| --- | --- | --- | --- | --- |
| 1 | DynamoDB | dynamodb.py `SerializedDynamoDB` | moto's backend is not thread-safe: a cancelled transaction restored a snapshot over other threads' writes, which DynamoDB never loses | 5.2.5 |
| 2 | DynamoDB | dynamodb.py `transact_write_items` | moto deep-copied the whole table on every transaction (4 s at 10,000 items); only the touched items are saved | 5.2.5 |
| 3 | DynamoDB | dynamodb.py `query` | moto's Query sorted the whole table; it looks at its partition (or its index bucket) only, as DynamoDB's latency does | 5.2.5 |
| 4 | CloudFormation | cloudformation.py | moto dropped a table's TimeToLiveSpecification and PointInTimeRecoverySpecification | 5.2.5 |
| 5 | Cognito | cognito.py `confirm_sign_up` | moto did not mark a confirmed email verified in a pool that auto-verifies it, as AWS does | 5.2.5 |
| 6 | DynamoDB | devstack/harsh.py, dynamodb.py `query`/`stream_add` | moto is immediate and lossless; on demand, a lagging index, lost responses, throttling, duplicated stream records | 5.2.5 |
| 7 | DynamoDB | dynamodb.py `freeze_after_full_collections`, `delete_table` | full garbage collections over moto's millions of objects paused every request for half a second | 5.2.5 |
| 8 | Lambda | awslambda.py | moto invoked a mapped function inside each write and emptied the stream; a table's writes never depend on its stream's readers | 5.2.5 |
| 9 | Cognito | cognito.py `sign_up` | moto runs no trigger; a SignUp runs the sign-up Lambda's pre-sign-up check, as the pool does in AWS | 5.2.5 |
| 10 | DynamoDB Streams | streams.py | moto wrote GetRecords through botocore's model at about 1 ms a record (1 s a page) | 5.2.5 |
| 11 | the server | server.py `frontend_only_cors` | moto answered CORS for any origin: any page could call the local Cognito or read /moto-api/data.json | 5.2.5 |
| 12 | S3 | s3.py `PresignedUrls` | moto accepted any presigned URL: one signed for a key, a Content-Type and minutes worked for any key, any type, forever | 5.2.5 |
| 13 | CloudFormation | cloudformation.py `model_the_unmodelled` | moto skipped CloudFront's distribution and origin access control and the bucket and queue policies, and a stack whose output named one failed to be made | 5.2.5 |
| 14 | CloudFormation | cloudformation.py `execute_change_set_with_outputs` | moto gave a stack made through a change set (as bin/aws/deploy makes it) no outputs | 5.2.5 |

The server's persistent connections (server.py `KeepAliveHandler`) are no correction of a
service: werkzeug closed every connection, and each call paid a new one.
"""
from __future__ import annotations

import inspect
import os
import types
from dataclasses import dataclass

import moto
import moto.dynamodb.models as ddb_models
import moto.server
from moto.awslambda.models import LambdaBackend
from moto.cloudformation.models import CloudFormationBackend
from moto.cognitoidp.models import CognitoIdpBackend
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import StreamShard, Table
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from werkzeug.serving import run_simple

from devstack import harsh, moto_state
from devstack.moto import SIGN_UP_DATABASE_ENV
from devstack.moto_corrections import awslambda, cloudformation, cognito, dynamodb, s3, server, streams


@dataclass(frozen=True)
class Correction:
    number: int
    service: str
    module: str
    reason: str
    measured_on: str = "5.2.5"


CORRECTIONS = (
    Correction(1, "DynamoDB", "dynamodb", "requests one at a time: moto's backend is not thread-safe"),
    Correction(2, "DynamoDB", "dynamodb", "a transaction saves only the items it touches, not a copy of the table"),
    Correction(3, "DynamoDB", "dynamodb", "a Query looks at its partition or index bucket only"),
    Correction(4, "CloudFormation", "cloudformation", "a table gets the template's TTL and point-in-time recovery"),
    Correction(5, "Cognito", "cognito", "a confirmed sign-up's email is verified where the pool auto-verifies it"),
    Correction(6, "DynamoDB", "dynamodb", "harsh on demand: a lagging index, lost responses, throttling, duplicates"),
    Correction(7, "DynamoDB", "dynamodb", "no half-second pauses of full garbage collections"),
    Correction(8, "Lambda", "awslambda", "a mapped function is never invoked inside a write"),
    Correction(9, "Cognito", "cognito", "a SignUp runs the sign-up Lambda's pre-sign-up check"),
    Correction(10, "DynamoDB Streams", "streams", "GetRecords written as JSON directly"),
    Correction(11, "server", "server", "CORS for the frontend's origin only, none on moto's own API"),
    Correction(12, "S3", "s3", "a presigned URL is refused for another key, type or time than it was signed for"),
    Correction(13, "CloudFormation", "cloudformation", "the template's CloudFront and policy resources deploy as stand-ins"),
    Correction(14, "CloudFormation", "cloudformation", "a stack made through a change set has its outputs"),
)


def check_moto(query_signature: inspect.Signature | None = None) -> None:
    """Raise RuntimeError naming what is missing when this moto lacks what the corrections use."""
    signature = query_signature or dynamodb.MOTO_QUERY_SIGNATURE
    missing = [f"Table.query argument {name!r}" for name in dynamodb.QUERY_ARGUMENTS
               if name not in signature.parameters]
    wanted: list[tuple[type, str]] = [
        (Table, "all_items"), (Table, "get_item"), (DynamoDBBackend, "transact_write_items"),
        (DynamoDBBackend, "delete_table"), (DynamoType, "cast_value"), (StreamShard, "add"),
        (LambdaBackend, "send_dynamodb_items"), (CognitoIdpBackend, "confirm_sign_up"),
        (CognitoIdpBackend, "sign_up"), (Table, "create_from_cloudformation_json"),
        (DynamoDBBackend, "update_time_to_live"), (DynamoDBBackend, "update_continuous_backups"),
        (CognitoIdpBackend, "admin_get_user"), (DynamoDBStreamsHandler, "get_records"),
        (DynamoDBStreamsBackend, "get_records"), (CloudFormationBackend, "execute_change_set"),
    ]
    missing += [f"{owner.__name__}.{name}" for owner, name in wanted if not hasattr(owner, name)]
    if not isinstance(getattr(ddb_models, "copy", None), (types.ModuleType, dynamodb.CopyWithoutTables)):
        missing.append("moto.dynamodb.models.copy (the copy module)")
    if list(inspect.signature(dynamodb.MOTO_STREAM_ADD).parameters)[1:] != ["old", "new"]:
        missing.append("StreamShard.add(old, new)")
    if "transact_items" not in inspect.signature(dynamodb.MOTO_TRANSACT_WRITE_ITEMS).parameters:
        missing.append("DynamoDBBackend.transact_write_items argument 'transact_items'")
    if missing:
        raise RuntimeError("devstack/moto_corrections no longer fit this moto "
                           f"({getattr(moto, '__version__', '?')}): {', '.join(missing)} changed")


def install(harshness: harsh.Harshness | None = None,
            keeper: moto_state.Keeper | None = None) -> None:
    """Apply every correction to this process's moto (before its server starts)."""
    check_moto()
    state = harsh.State(harshness if harshness is not None else harsh.from_env(),
                        os.environ.get("LOCAL_HARSH_SEED"))
    dynamodb.use_harshness(state)
    from moto.moto_server import werkzeug_app

    from lib.config import Settings

    werkzeug_app.DISABLE_GLOBAL_CORS = True  # type: ignore[attr-defined]
    factory = server.frontend_only_cors(werkzeug_app.create_backend_app,
                                        os.environ.get("FRONTEND_URL") or Settings().frontend_url)
    werkzeug_app.create_backend_app = factory  # type: ignore[assignment]
    moto.server.create_backend_app = factory  # type: ignore[attr-defined]  (main() takes it from here)
    StreamShard.add = dynamodb.stream_add  # type: ignore[method-assign]
    DynamoDBStreamsHandler.get_records = streams.get_records  # type: ignore[method-assign,assignment]
    LambdaBackend.send_dynamodb_items = awslambda.send_dynamodb_items  # type: ignore[method-assign,assignment]
    CognitoIdpBackend.confirm_sign_up = cognito.confirm_sign_up  # type: ignore[method-assign]
    database = os.environ.get(SIGN_UP_DATABASE_ENV)
    if database:
        from devstack import lambdas  # the Lambda's code, as it is deployed

        os.environ["CONNECTION_URL"] = database  # what the Lambda reads, in this process only
        cognito.use_sign_up_lambda(lambdas.load(lambdas.LAMBDAS / "cruddur-post-confirmation.py"))
        CognitoIdpBackend.sign_up = cognito.sign_up  # type: ignore[method-assign]
    Table.create_from_cloudformation_json = classmethod(cloudformation.table_from_cloudformation)
    cloudformation.model_the_unmodelled()
    CloudFormationBackend.execute_change_set = cloudformation.execute_change_set_with_outputs  # type: ignore[method-assign]  # type: ignore[method-assign,assignment]
    ddb_models.copy = dynamodb.CopyWithoutTables()  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = dynamodb.transact_write_items  # type: ignore[method-assign]
    DynamoDBBackend.delete_table = dynamodb.delete_table  # type: ignore[method-assign]
    DynamoType.cast_value = property(dynamodb.cast_value)  # type: ignore[assignment,method-assign]
    Table.query = dynamodb.query  # type: ignore[method-assign]
    on_change = keeper.changed if keeper else (lambda: None)
    moto.server.run_simple = lambda host, port, app, **kwargs: run_simple(  # type: ignore[assignment]
        host, port, harsh.HarshMiddleware(dynamodb.SerializedDynamoDB(s3.PresignedUrls(app), on_change), state),
        **{**kwargs, "request_handler": server.KeepAliveHandler})
