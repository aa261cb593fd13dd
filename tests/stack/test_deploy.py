"""bin/aws/deploy and bin/aws/destroy against the local stack's moto: aws/template.yaml deployed
through a change set, its resources read back, a second deploy with nothing to change, and the
stack destroyed with the table kept."""
from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from lib import aws
from lib.config import ROOT, Settings

TIMEOUT = 300
# the private path to PostgreSQL every deploy needs (moto checks no subnet), and each Lambda's URL
DATABASE_PARAMETERS = ("-p", "SubnetIds=subnet-0a1b2c3d,subnet-0e1f2a3b", "-p", "SecurityGroupIds=sg-0c1d2e3f",
                       "-p", "EventsConnectionUrl=postgresql://cruddur_events@db/cruddur",
                       "-p", "SignUpConnectionUrl=postgresql://cruddur_sign_up@db/cruddur")


def script(name: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "bin" / "aws" / name), *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def deployed(settings: Settings):
    stack, table = f"test-{uuid.uuid4().hex[:8]}", f"deployed-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DDB_MESSAGE_TABLE": table, "STACK_PARAMETERS": "LogRetentionDays=7"}
    first = script("deploy", "--stack-name", stack, *DATABASE_PARAMETERS, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    yield stack, settings.with_(ddb_table=table), env, first.stdout
    script("destroy", "--stack-name", stack, env=env)
    ddb = aws.client(settings, "dynamodb")
    ddb.update_table(TableName=table, DeletionProtectionEnabled=False)
    ddb.delete_table(TableName=table)


def test_the_change_set_is_printed_then_executed(deployed):
    stack, _, _, out = deployed
    assert f"(CREATE) of stack {stack}" in out
    for resource in ("MessagesTable", "StreamFunction", "StreamMapping", "StreamFailureQueue",
                     "StreamIteratorAgeAlarm", "PostConfirmationFunction"):
        assert f"Add      {resource} " in out
    assert f"stack {stack}: CREATE_COMPLETE" in out


def test_the_deployed_table(deployed):
    _, settings, _, _ = deployed
    ddb = aws.client(settings, "dynamodb")
    table = ddb.describe_table(TableName=settings.ddb_table)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    [gsi] = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "message-group-sk-index"
    assert [k["AttributeName"] for k in gsi["KeySchema"]] == ["message_group_uuid", "sk"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionProtectionEnabled"] is True
    ttl = ddb.describe_time_to_live(TableName=settings.ddb_table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def test_the_deployed_function_mapping_and_role(deployed):
    stack, settings, _, _ = deployed
    lam = aws.client(settings, "lambda")
    function = lam.get_function_configuration(FunctionName=f"{stack}-messaging-stream")
    assert function["Handler"] == "cruddur-messaging-stream.lambda_handler"
    assert function["Runtime"] >= "python3.11"
    assert function["Environment"]["Variables"]["DDB_MESSAGE_TABLE"] == settings.ddb_table
    table_arn = aws.client(settings, "dynamodb").describe_table(TableName=settings.ddb_table)["Table"]["TableArn"]
    [mapping] = [m for m in lam.list_event_source_mappings()["EventSourceMappings"]
                 if m["FunctionArn"] == function["FunctionArn"]]
    assert mapping["EventSourceArn"].startswith(f"{table_arn}/stream/")
    assert (mapping["BatchSize"], mapping["FunctionResponseTypes"]) == (1000, ["ReportBatchItemFailures"])
    assert mapping["MaximumRetryAttempts"] == 10 and mapping["BisectBatchOnFunctionError"] is True
    assert ":sqs:" in mapping["DestinationConfig"]["OnFailure"]["Destination"]

    iam = aws.client(settings, "iam")
    role = function["Role"].rsplit("/", 1)[1]
    [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    statements = {s["Sid"]: s for s in policy_document(iam, role, name)["Statement"]}
    checked = json.loads((ROOT / "aws" / "policies" / "cruddur-messaging-stream.json").read_text())
    expected = {s["Sid"]: s for s in checked["Statement"] if s["Sid"] != "CreateTheLogGroup"}
    assert set(statements) == set(expected)
    for sid, statement in statements.items():
        wanted = expected[sid]["Action"]
        assert set([wanted] if isinstance(wanted, str) else wanted) == \
            set([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        assert statement.get("Condition") == expected[sid].get("Condition")
        assert "*" not in json.dumps(statement["Action"])
    # the stack's own resources, never "*": the table, its index, its stream
    assert statements["ReadTheGroupHeader"]["Resource"] == table_arn
    assert statements["FindTheGroupRows"]["Resource"] == f"{table_arn}/index/message-group-sk-index"
    assert statements["ReadTheTableStream"]["Resource"].startswith(f"{table_arn}/stream/")


def test_the_deployed_assets_bucket_and_avatar_lambda(deployed):
    """Issue 35, item 3: the assets bucket (encrypted, its public access blocked, retained), the
    avatar Lambda with its queue's mapping, and every output. (moto's CloudFormation makes
    CloudFront and the bucket and queue policies as stand-ins, correction 13:
    tests/fast/test_template.py checks those in the template.)"""
    stack, settings, _, out = deployed
    for resource in ("AssetsBucket", "AvatarQueue", "AvatarDeadLetterQueue", "AvatarFunction", "AvatarMapping",
                     "AssetsDistribution", "AssetsOriginAccessControl", "AssetsBucketPolicy"):
        assert f"Add      {resource} " in out, resource
    outputs = {o["OutputKey"]: o["OutputValue"] for o in
               aws.client(settings, "cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    bucket = outputs["AssetsBucketName"]
    assert outputs["AssetsDomainName"].endswith(".cloudfront.net") and "  AssetsDomainName" in out
    assert bucket.startswith(f"{stack}-assets-")
    s3 = aws.client(settings, "s3")
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    lam = aws.client(settings, "lambda")
    function = lam.get_function_configuration(FunctionName=f"{stack}-avatar-processing")
    assert function["Handler"] == "cruddur-avatar-processing.lambda_handler"
    assert function["Environment"]["Variables"]["ASSETS_BUCKET"] == bucket
    [mapping] = [m for m in lam.list_event_source_mappings()["EventSourceMappings"]
                 if m["FunctionArn"] == function["FunctionArn"]]
    assert ":sqs:" in mapping["EventSourceArn"] and mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def policy_document(iam, role: str, name: str) -> dict:
    """An inline policy as IAM returns it (a dict, or its JSON or Python text from moto)."""
    import ast
    from urllib.parse import unquote

    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    if isinstance(document, dict):
        return document
    text = unquote(document)
    try:
        return json.loads(text)
    except ValueError:
        return ast.literal_eval(text)


def test_prod_refuses_without_a_terminal_before_sending_anything():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(AWS_ACCESS_KEY_ID="bogus", AWS_SECRET_ACCESS_KEY="bogus", AWS_EC2_METADATA_DISABLED="true")
    help_ = script("deploy", "--help", env=env)
    assert help_.returncode == 0 and "--stack-name" in help_.stdout and "--parameter" in help_.stdout
    assert "--prod" in script("destroy", "--help", env=env).stdout
    for name in ("deploy", "destroy"):
        refused = script(name, "--prod", env=env)
        assert refused.returncode != 0 and "without a terminal" in refused.stderr, refused.stderr


def test_the_deployed_point_in_time_recovery(deployed):
    _, settings, _, _ = deployed
    ddb = aws.client(settings, "dynamodb")
    backups = ddb.describe_continuous_backups(TableName=settings.ddb_table)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    # (the log groups, their retention and the alarms are not read back: moto's CloudFormation
    # reports them created but they do not show in moto's Logs and CloudWatch;
    # tests/fast/test_template.py checks them in the template)


class FailingStack:
    """A CloudFormation whose stack creation fails on the table, as AWS reports it: the
    resource's CREATE_FAILED with its reason, then ROLLBACK_COMPLETE."""

    def __init__(self):
        from types import SimpleNamespace

        from botocore.exceptions import ClientError

        self.exceptions = SimpleNamespace(ClientError=ClientError)
        self.executed = False

    def describe_stacks(self, StackName):
        if not self.executed:
            raise self.exceptions.ClientError(
                {"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}},
                "DescribeStacks")
        return {"Stacks": [{"StackName": StackName, "StackStatus": "ROLLBACK_COMPLETE", "StackId": "id"}]}

    def create_change_set(self, **kwargs):
        return {"Id": "change-set"}

    def describe_change_set(self, ChangeSetName):
        return {"Status": "CREATE_COMPLETE", "Changes": [{"ResourceChange": {
            "Action": "Add", "LogicalResourceId": "MessagesTable", "ResourceType": "AWS::DynamoDB::Table"}}]}

    def execute_change_set(self, ChangeSetName):
        self.executed = True

    def describe_stack_events(self, StackName):
        return {"StackEvents": [
            {"EventId": "3", "LogicalResourceId": StackName, "ResourceStatus": "ROLLBACK_COMPLETE"},
            {"EventId": "2", "LogicalResourceId": "MessagesTable", "ResourceStatus": "CREATE_FAILED",
             "ResourceStatusReason": "Resource of type 'AWS::DynamoDB::Table' with identifier "
                                     "'cruddur-messages' already exists."},
            {"EventId": "1", "LogicalResourceId": StackName, "ResourceStatus": "CREATE_IN_PROGRESS"}]}


def test_a_failed_deploy_exits_non_zero_with_the_failing_resources_reason(monkeypatch, settings):
    from click.testing import CliRunner

    from cli import aws as aws_cli

    cloudformation = FailingStack()
    monkeypatch.setattr(aws_cli, "upload", lambda *args: {"CodeBucket": "b", "StreamFunctionKey": "s",
                                                          "PostConfirmationFunctionKey": "p"})
    monkeypatch.setattr(aws_cli.aws, "client", lambda s, service: cloudformation)
    # made between deploy's look and the stack's creation (a look that finds it refuses at once)
    monkeypatch.setattr(aws_cli, "table_exists", lambda *args: False)
    monkeypatch.setattr(aws_cli, "connection_secret", lambda *args: "arn:aws:secretsmanager:x:1:secret:c")
    result = CliRunner().invoke(aws_cli.cli, ["deploy", "--stack-name", "broken", *DATABASE_PARAMETERS,
                                              "-p", "AssetsBucketName=broken-assets"])
    assert result.exit_code != 0
    assert "stack broken: ROLLBACK_COMPLETE" in result.output
    assert "MessagesTable: Resource of type 'AWS::DynamoDB::Table'" in result.output
    assert "already exists" in result.output


def test_a_new_stack_over_a_table_that_exists_is_refused_before_anything_is_created(fresh_table):
    """./bin/dev (or bin/ddb/schema-load, or the week-5 backend) made the table already: a new
    stack would fail on it (locally moto's error even came back unparseable, a traceback), so
    deploy refuses in one line, pointing at the import, and creates nothing."""
    stack = f"test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DDB_MESSAGE_TABLE": fresh_table.ddb_table}
    refused = script("deploy", "--stack-name", stack, *DATABASE_PARAMETERS, env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"table {fresh_table.ddb_table} exists already" in refused.stderr
    assert "Adopting the table you have" in refused.stderr and "Traceback" not in refused.stderr
    cfn = aws.client(fresh_table, "cloudformation")
    assert stack not in {s["StackName"] for s in cfn.list_stacks()["StackSummaries"]}


def test_failures_in_the_queue_are_replayed_from_the_stream(deployed):
    """Issue 24, item 10: a batch the stream Lambda gave up on (its failure message in the queue, as
    Lambda writes it) is applied again by bin/aws/replay-failures, and its message deleted."""
    from lib.conversations import layout
    from lib.ddb import Ddb
    from tests import tables

    stack, settings, env, _ = deployed
    cfn, sqs = aws.client(settings, "cloudformation"), aws.client(settings, "sqs")
    streams = aws.client(settings, "dynamodbstreams")
    queue = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in cfn.list_stack_resources(
        StackName=stack)["StackResourceSummaries"] if r.get("LogicalResourceId")}["StreamFailureQueue"]
    table = Ddb(settings)
    a, b = ({"uuid": str(uuid.uuid4()), "handle": h, "display_name": h.title()} for h in ("ann", "ben"))
    group = layout.group_uuid_for(a["uuid"], b["uuid"])
    sent = "2030-01-01T00:00:00.000000+00:00"
    table.put(layout.header_item(group, sorted([a["uuid"], b["uuid"]]), sent, layout.profiles_of(a, b)))
    table.put(layout.message_item(group, a, "lost and found", sent))
    arn = aws.client(settings, "dynamodb").describe_table(TableName=settings.ddb_table)["Table"]["LatestStreamArn"]
    [shard] = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    seqs = [r["dynamodb"]["SequenceNumber"] for r in streams.get_records(ShardIterator=iterator)["Records"]]
    batch = {"shardId": shard["ShardId"], "startSequenceNumber": seqs[-2], "endSequenceNumber": seqs[-1],
             "batchSize": 2, "streamArn": arn}
    sqs.send_message(QueueUrl=queue,
                     MessageBody=json.dumps({"version": "1.0", "DDBStreamBatchInfo": batch}))
    assert tables.groups_page(table, a["uuid"], 10).items == []
    replayed = script("replay-failures", "--stack-name", stack, env=env)
    assert replayed.returncode == 0 and "replayed 1, failed again 0" in replayed.stdout, \
        replayed.stdout + replayed.stderr
    for person in (a, b):
        [row] = tables.groups_page(table, person["uuid"], 10).items
        assert (row["message_group_uuid"], row["message"]) == (group, "lost and found")
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)
    # the events Lambda's own queue (issue 33, item 12): the same batch, given up on by the events
    # mapping, is replayed into the events Lambda, whose log then holds the message for both
    import psycopg

    from lib import event_log

    events_queue = stack_resources_of(cfn, stack)["EventsFailureQueue"]
    sqs.send_message(QueueUrl=events_queue,
                     MessageBody=json.dumps({"version": "1.0", "DDBStreamBatchInfo": batch}))
    replayed = script("replay-failures", "--stack-name", stack, env=env)
    assert replayed.returncode == 0 and "replayed 1, failed again 0" in replayed.stdout, \
        replayed.stdout + replayed.stderr
    assert "EventsFailureQueue -> EventsFunction" in replayed.stdout
    with psycopg.connect(settings.connection_url, autocommit=True) as conn:
        for person in (a, b):
            logged = [json.loads(e.data) for e in event_log.after(conn, person["uuid"], 0)]
            assert [e["message"] for e in logged if "message" in e][:1] == ["lost and found"], person
    assert "Messages" not in sqs.receive_message(QueueUrl=events_queue, WaitTimeSeconds=0)


def stack_resources_of(cfn, stack: str) -> dict[str, str]:
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in cfn.list_stack_resources(
        StackName=stack)["StackResourceSummaries"] if r.get("LogicalResourceId")}


def test_a_deploy_without_the_private_path_to_postgresql_says_what_to_pass_and_sends_nothing(settings: Settings):
    """Issue 33, item 11: no subnets or security groups, no deploy: the Lambdas that reach
    PostgreSQL would run outside the VPC, which only a public database could serve."""
    stack = f"test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DDB_MESSAGE_TABLE": f"novpc-{uuid.uuid4().hex[:8]}"}
    for given in ((), ("-p", "SubnetIds=subnet-0a1b2c3d"), ("-p", "SubnetIds=", "-p", "SecurityGroupIds=sg-1")):
        refused = script("deploy", "--stack-name", stack, *given, env=env)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "pass -p SubnetIds=subnet-aaa,subnet-bbb -p SecurityGroupIds=sg-ccc" in refused.stderr
        assert "Traceback" not in refused.stderr
    cfn = aws.client(settings, "cloudformation")
    assert stack not in {s["StackName"] for s in cfn.list_stacks()["StackSummaries"]}


def test_an_artifacts_bucket_of_another_account_is_refused(settings: Settings):
    """Issue 24, item 11: the bucket's name is predictable; one that another account created first
    never receives the Lambdas' code."""
    stack = f"taken-{uuid.uuid4().hex[:8]}"
    account = aws.client(settings, "sts").get_caller_identity()["Account"]
    other = aws.client(settings, "s3")
    other.meta.events.register("before-sign.s3.*", lambda request, **_: request.headers.__setitem__(
        "x-moto-account-id", "111122223333"))
    other.create_bucket(Bucket=f"{stack}-artifacts-{account}-{settings.aws_region}")
    env = {**os.environ, "DDB_MESSAGE_TABLE": f"never-{uuid.uuid4().hex[:8]}"}
    refused = script("deploy", "--stack-name", stack, *DATABASE_PARAMETERS, env=env)
    assert refused.returncode != 0 and "belongs to another account" in refused.stderr, \
        refused.stdout + refused.stderr
    assert other.list_objects_v2(Bucket=f"{stack}-artifacts-{account}-{settings.aws_region}").get("KeyCount") == 0


def test_the_connection_url_is_a_secret_not_a_setting(deployed):
    """Issue 24, item 9: the sign-up Lambda reads its PostgreSQL URL from Secrets Manager at run
    time; neither the stack's parameters nor the function's settings hold it."""
    stack, settings, _, _ = deployed
    for name, user in (("post-confirmation", "cruddur_sign_up"), ("messaging-events", "cruddur_events")):
        function = aws.client(settings, "lambda").get_function_configuration(FunctionName=f"{stack}-{name}")
        variables = function["Environment"]["Variables"]
        assert "CONNECTION_URL" not in variables and "postgresql://" not in json.dumps(variables)
        secret = aws.client(settings, "secretsmanager").get_secret_value(SecretId=variables["CONNECTION_SECRET_ARN"])
        assert secret["SecretString"] == f"postgresql://{user}@db/cruddur"  # each its own database user
        assert function["VpcConfig"]["SubnetIds"] == ["subnet-0a1b2c3d", "subnet-0e1f2a3b"]
    parameters = aws.client(settings, "cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["Parameters"]
    assert "postgresql://" not in json.dumps(parameters)


def unpacked(handler, where, files: dict[str, bytes] | None = None, requirements: list[str] | None = None) -> set[str]:
    """The names in `handler`'s Lambda package as bin/aws/deploy makes it (with `files` at its
    root, and the wheels of `requirements`), extracted into `where`."""
    import io
    import zipfile

    from cli.aws import files_of, package

    with zipfile.ZipFile(io.BytesIO(package(handler, requirements, files_of(handler), files))) as archive:
        archive.extractall(where)
        return set(archive.namelist())


def test_the_sign_up_package_holds_the_identity_rules_it_runs(tmp_path):
    """The deployed zip of the sign-up Lambda carries the identity rules (domain/identity.py,
    domain/visible_text.py) and the users' store (lib/users.py) beside its handler, and runs from
    the zip alone: the rules the API runs are the rules deployed, and nothing else is packaged."""
    import sys

    from cli.aws import POST_CONFIRMATION_LAMBDA

    names = unpacked(POST_CONFIRMATION_LAMBDA, tmp_path)
    assert {n for n in names if not n.startswith("db/sql/users/")} == {
        "cruddur-post-confirmation.py", "lib/__init__.py", "lib/users.py", "lib/lambda_support.py",
        "lib/sql_files.py", "domain/__init__.py", "domain/identity.py",
        "domain/visible_text.py"}
    assert {"db/sql/users/holder_of_email.sql", "db/sql/users/create.sql",
            "db/sql/users/link_unlinked.sql"} <= names  # identity's statements
    code = ("import importlib.util, sys; "
            "spec = importlib.util.spec_from_file_location('handler', 'cruddur-post-confirmation.py'); "
            "handler = importlib.util.module_from_spec(spec); spec.loader.exec_module(handler); "
            "print(handler.users.__file__); "
            "print(handler.lambda_handler({'triggerSource': 'CustomMessage_SignUp'}, None)); "
            "print(handler.users.template('users', 'create').splitlines()[0])")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    where, answer, statement = result.stdout.splitlines()
    assert where == str(tmp_path / "lib" / "users.py")
    assert answer == "{'triggerSource': 'CustomMessage_SignUp'}"
    assert statement.startswith("-- A new user")  # read from the zip's own db/sql/users/


def test_a_second_deploy_changes_nothing_and_destroy_keeps_the_table(deployed, settings):
    stack, deployed_settings, env, _ = deployed
    again = script("deploy", "--stack-name", stack, *DATABASE_PARAMETERS, env=env)
    assert again.returncode == 0 and f"stack {stack}: no changes" in again.stdout, again.stdout + again.stderr
    gone = script("destroy", "--stack-name", stack, env=env)
    assert gone.returncode == 0 and "DELETE_COMPLETE" in gone.stdout, gone.stdout + gone.stderr
    assert deployed_settings.ddb_table in aws.client(settings, "dynamodb").list_tables()["TableNames"]


def run_from_zip(where, handler_file: str, then: str, env: dict[str, str] | None = None) -> list[str]:
    """The lines a new interpreter prints that loads the unpacked package at `where`'s handler
    (`handler_file`) as the module `handler`, with nothing but the package on its path, then runs
    `then` (Python)."""
    import sys

    code = ("import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('handler', {handler_file!r}); "
            "handler = sys.modules['handler'] = importlib.util.module_from_spec(spec); "
            "spec.loader.exec_module(handler); " + then)
    result = subprocess.run([sys.executable, "-c", code], cwd=where, capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(where), **(env or {})})
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_stream_package_holds_the_store_code_it_runs(tmp_path):
    """The stream Lambda's zip carries the conversation store's code (lib/conversations/, the
    DynamoDB helper, the errors) beside its handler and runs from the zip alone, boto3 aside
    (Lambda's own): every project module it loads comes from the zip."""
    from cli.aws import STREAM_LAMBDA

    names = unpacked(STREAM_LAMBDA, tmp_path)
    assert {"cruddur-messaging-stream.py", "lib/ddb.py", "lib/conversations/stream.py",
            "lib/conversations/read_markers.py", "lib/conversations/layout.py"} <= names
    answer, *files, cap = run_from_zip(tmp_path, "cruddur-messaging-stream.py", (
        "answer = handler.handle_event({'Records': [{'eventName': 'REMOVE'}]}, handler.make_client({'AWS_DEFAULT_REGION': 'us-east-1'}), handler.Config()); "
        "mods = sorted(m.__file__ for n, m in sys.modules.items() if n.split('.')[0] in ('lib', 'domain', 'services')); "
        "print(answer); print(*mods, sep='\\n'); print(sys.modules['domain.unread'].UNREAD_CAP)"))
    assert answer == "{'batchItemFailures': []}" and cap == "99"
    assert files and all(f.startswith(str(tmp_path)) for f in files), files


def test_the_events_package_runs_from_the_zip_with_its_sql(tmp_path, settings):
    """Issue 27: the events Lambda's zip carries the conversation code, the event log and its SQL
    (db/sql/events/) beside its handler, and logs a batch from the zip alone (psycopg aside: the
    deployment adds its wheels)."""
    from cli.aws import EVENTS_LAMBDA

    names = unpacked(EVENTS_LAMBDA, tmp_path)
    assert {"cruddur-messaging-events.py", "lib/event_log.py", "lib/conversations/events.py",
            "db/sql/events/lock_head.sql", "db/sql/events/claim_ticket.sql"} <= names
    answer, where, _ = run_from_zip(tmp_path, "cruddur-messaging-events.py", (
        "print(handler.lambda_handler({'Records': [{'eventName': 'REMOVE'}]}, None)); "
        "print(handler.event_log.__file__); print(handler.event_log.template.__module__)"),
        {"AWS_DEFAULT_REGION": "us-east-1", "CONNECTION_URL": settings.connection_url})
    assert answer == "{'batchItemFailures': []}" and where == str(tmp_path / "lib" / "event_log.py")


def test_the_deployed_lambdas_carry_the_rds_bundle_and_reach_postgresql_over_verified_tls(
        tmp_path, settings, tls_database):
    """Issue 33, item 11: bin/aws/deploy puts the RDS certificate bundle it is given in the
    packages of both Lambdas that reach PostgreSQL; run from its zip with its URL in a secret, a
    Lambda's connection is TLS, checked against that bundle, whatever the URL asks."""
    import sys

    from cli.aws import EVENTS_LAMBDA, POST_CONFIRMATION_LAMBDA, ca_bundle
    from lib import lambda_support

    url, bundle = tls_database
    files = ca_bundle(str(bundle), prod=True)
    assert files == {lambda_support.RDS_CA_BUNDLE: bundle.read_bytes()}
    arn = aws.client(settings, "secretsmanager").create_secret(
        Name=f"test/{uuid.uuid4().hex[:8]}", SecretString=url + "?sslmode=prefer")["ARN"]
    for lambda_file in (EVENTS_LAMBDA, POST_CONFIRMATION_LAMBDA):
        where = tmp_path / lambda_file.stem
        assert lambda_support.RDS_CA_BUNDLE in unpacked(lambda_file, where, files)
        code = ("from lib import lambda_support; c = lambda_support.connect(); "
                "print(c.pgconn.ssl_in_use, c.execute('SELECT count(*) > 0 FROM users').fetchone()[0])")
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(where), "AWS_DEFAULT_REGION": settings.aws_region,
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_ENDPOINT_URL": settings.aws_endpoint_url, "CONNECTION_SECRET_ARN": arn}
        result = subprocess.run([sys.executable, "-c", code], cwd=where, capture_output=True, text=True,
                                timeout=60, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["True", "True"], lambda_file.name


def test_a_prod_deploy_needs_the_rds_bundle_and_refuses_what_is_not_one(tmp_path):
    import click

    from cli.aws import ca_bundle
    from tests.tls_postgres import authority, server_certificate

    with pytest.raises(click.ClickException, match="--rds-ca-bundle"):
        ca_bundle(None, prod=True)
    assert ca_bundle(None, prod=False) == {}  # locally no Lambda connects
    leaf, _ = server_certificate(authority("someone"))
    (tmp_path / "leaf.pem").write_bytes(leaf)
    (tmp_path / "junk.pem").write_text("not a certificate")
    for name in ("leaf.pem", "junk.pem"):
        with pytest.raises(click.ClickException, match="no PEM certificates of certificate authorities"):
            ca_bundle(str(tmp_path / name), prod=True)


def test_the_avatar_package_carries_pillow_and_makes_an_avatar_from_the_zip(tmp_path, monkeypatch, settings):
    """Issue 35: the avatar Lambda's zip holds its code, the rules and Pillow's wheel for Lambda's
    platform (here this machine's Python, whose wheels the package index has here), and from the
    zip alone it makes an upload in the local bucket into an avatar."""
    import io
    import sys

    from PIL import Image

    from cli import aws as aws_cli
    from domain import avatars

    monkeypatch.setattr(aws_cli, "LAMBDA_PYTHON", f"{sys.version_info.major}.{sys.version_info.minor}")
    names = unpacked(aws_cli.AVATAR_LAMBDA, tmp_path, requirements=aws_cli.AVATAR_REQUIREMENTS)
    assert {"cruddur-avatar-processing.py", "lib/avatars.py", "lib/images.py", "domain/avatars.py",
            "PIL/Image.py"} <= names
    owner = f"sub-zip-{uuid.uuid4().hex[:8]}"
    s3 = aws.client(settings, "s3")
    upload = io.BytesIO()
    Image.new("RGB", (64, 32), (0, 200, 0)).save(upload, "PNG")
    s3.put_object(Bucket=settings.assets_bucket, Key=avatars.upload_key(owner), Body=upload.getvalue())
    notice = json.dumps({"Records": [{"s3": {"bucket": {"name": settings.assets_bucket},
                                              "object": {"key": avatars.upload_key(owner)}}}]})
    env = {"ASSETS_BUCKET": settings.assets_bucket, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": settings.aws_endpoint_url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    answer, pillow = run_from_zip(tmp_path, "cruddur-avatar-processing.py", (
        f"print(handler.lambda_handler({{'Records': [{{'messageId': 'm', 'body': {notice!r}}}]}}, None)); "
        "import PIL; print(PIL.__file__)"), env)
    assert answer == "{'batchItemFailures': []}" and pillow.startswith(str(tmp_path))
    made = s3.get_object(Bucket=settings.assets_bucket, Key=avatars.avatar_key(owner))["Body"].read()
    assert Image.open(io.BytesIO(made)).size == (avatars.AVATAR_SIDE, avatars.AVATAR_SIDE)
