"""aws/template.yaml, checked offline: cfn-lint finds nothing, the resources have what the system
needs, and the stream Lambda's role is the least-privilege policy of aws/policies/ (the one
tests/stack/test_stream_lambda.py checks against every call the function makes), with the stack's own
ARNs instead of pasted ones."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lib.config import ROOT


TEMPLATE = ROOT / "aws" / "template.yaml"


class Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !GetAtt, !Sub, ...) kept as {tag: value}."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


Loader.add_multi_constructor("!", _tagged)


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=Loader)


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_cfn_lint_finds_nothing():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cfn-lint" not in TEMPLATE.read_text(), "no rule silenced (none needs to be)"


def test_the_table(template):
    [table] = resources(template, "AWS::DynamoDB::Table").values()
    assert table["DeletionPolicy"] == "Retain"
    p = table["Properties"]
    assert p["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    [gsi] = p["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "message-group-sk-index" and gsi["Projection"] == {"ProjectionType": "ALL"}
    assert [k["AttributeName"] for k in gsi["KeySchema"]] == ["message_group_uuid", "sk"]
    assert p["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert p["SSESpecification"] == {"SSEEnabled": True} and p["DeletionProtectionEnabled"] is True
    assert p["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert template["Parameters"]["BillingMode"]["Default"] == "PAY_PER_REQUEST"


def test_the_event_source_mapping_and_the_alarms(template):
    m = template["Resources"]["StreamMapping"]["Properties"]
    assert m["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 < m["MaximumRetryAttempts"] <= 10 and m["BisectBatchOnFunctionError"] is True
    assert m["DestinationConfig"]["OnFailure"]["Destination"] == {"GetAtt": "StreamFailureQueue.Arn"}
    # a backlog in batches of one GetRecords call each, live messages waiting at most a second;
    # the local worker batches alike (issue 26, item 1)
    assert m["BatchSize"] == 1000 and m["MaximumBatchingWindowInSeconds"] <= 1
    from devstack import stream_mapping, stream_worker
    assert stream_mapping.batch_size() == stream_worker.DEFAULT_BATCH_SIZE == m["BatchSize"]
    metrics = {str(a["Properties"].get("MetricName")) for a in resources(template, "AWS::CloudWatch::Alarm").values()}
    assert {"IteratorAge", "Errors", "ApproximateNumberOfMessagesVisible"} <= metrics
    assert m["FilterCriteria"]["Filters"], "only what the function acts on (item 12)"
    for function in resources(template, "AWS::Lambda::Function").values():
        assert function["Properties"]["Runtime"] >= "python3.11"
    assert set(template["Outputs"]) == {"TableName", "TableArn", "StreamArn", "StreamFunctionName",
                                        "EventsFunctionName",
                                        "PostConfirmationFunctionName", "FailureQueueUrl",
                                        "EventsFailureQueueUrl", "ApiPolicyArn", "AlarmTopicArn",
                                        "AssetsBucketName", "AssetsDomainName", "AvatarFunctionName",
                                        "AvatarQueueUrl", "AvatarDeadLetterQueueUrl"}


def test_the_live_events_mapping_sends_every_change_an_event_is_made_of_at_once(template):
    """Issue 27: the events Lambda has its own mapping, with no batching window (a message is an
    event as soon as Lambda reads it), given new messages and written group rows, nothing else.
    The local worker reads this same mapping."""
    m = template["Resources"]["EventsMapping"]["Properties"]
    assert m["FunctionName"] == {"Ref": "EventsFunction"}
    assert m["MaximumBatchingWindowInSeconds"] == 0
    assert m["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    from devstack import stream_mapping
    patterns = stream_mapping.stream_patterns(mapping=stream_mapping.EVENTS)

    def record(name: str, **image: str) -> dict:
        return {"eventName": name, "dynamodb": {"NewImage": {k: {"S": v} for k, v in image.items()}}}

    message = {"pk": "MSG#g", "sk": "t", "message_uuid": "m"}
    row = {"pk": "GRP#u", "sk": "t", "message_group_uuid": "g"}
    assert stream_mapping.delivered(patterns, record("INSERT", **message))
    assert stream_mapping.delivered(patterns, record("INSERT", **row))
    assert stream_mapping.delivered(patterns, record("MODIFY", **row))
    assert not stream_mapping.delivered(patterns, record("REMOVE", **row))
    assert not stream_mapping.delivered(patterns, record("INSERT", pk="GROUP#g", sk="GROUP"))
    assert not stream_mapping.delivered(patterns, record("INSERT", pk="IDEM#u", sk="k"))
    function = template["Resources"]["EventsFunction"]["Properties"]
    assert function["Environment"]["Variables"]["CONNECTION_SECRET_ARN"] == {"Ref": "EventsConnectionSecretArn"}
    assert function["VpcConfig"] == {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": {"Ref": "SecurityGroupIds"}}


def test_the_lambdas_that_reach_postgresql_run_in_the_vpc_each_with_its_own_secret(template):
    """Issue 33, item 11: no path to a public database. Subnets and security groups are required
    (no default: the stack is refused without them, and bin/aws/deploy says what to pass), both
    functions always run in them, and each reads its own secret (its own database user)."""
    for name in ("SubnetIds", "SecurityGroupIds"):
        parameter = template["Parameters"][name]
        assert "Default" not in parameter and parameter["Type"].startswith("List<AWS::EC2::"), name
    assert "Conditions" not in template or "InVpc" not in template["Conditions"]
    secrets = {}
    for function, role in (("EventsFunction", "EventsFunctionRole"), ("PostConfirmationFunction", "PostConfirmationRole")):
        properties = template["Resources"][function]["Properties"]
        assert properties["VpcConfig"] == {"SubnetIds": {"Ref": "SubnetIds"},
                                           "SecurityGroupIds": {"Ref": "SecurityGroupIds"}}, function
        managed = template["Resources"][role]["Properties"]["ManagedPolicyArns"]
        assert "AWSLambdaVPCAccessExecutionRole" in json.dumps(managed)
        secrets[function] = properties["Environment"]["Variables"]["CONNECTION_SECRET_ARN"]["Ref"]
        [read] = [s for s in template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                  if s["Sid"] == "ReadTheConnectionSecret"]
        assert read["Resource"] == {"Ref": secrets[function]}
    assert secrets == {"EventsFunction": "EventsConnectionSecretArn",
                       "PostConfirmationFunction": "SignUpConnectionSecretArn"}
    assert template["Resources"]["EventsFunctionRole"]["Properties"]["AssumeRolePolicyDocument"] is not \
        template["Resources"]["PostConfirmationRole"]["Properties"]["AssumeRolePolicyDocument"]


def test_the_events_mapping_keeps_what_it_gives_up_on_and_is_watched_for_lag(template):
    """Issue 33, item 12: records the events mapping gives up on are named in their own queue
    (bin/aws/replay-failures replays them into the events Lambda), and an IteratorAge alarm says
    when live events fall behind."""
    mapping = template["Resources"]["EventsMapping"]["Properties"]
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"GetAtt": "EventsFailureQueue.Arn"}}}
    role = template["Resources"]["EventsFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    [send] = [s for s in role if s["Sid"] == "SendFailedBatchesToTheQueue"]
    assert send["Resource"] == {"GetAtt": "EventsFailureQueue.Arn"}
    age = template["Resources"]["EventsIteratorAgeAlarm"]["Properties"]
    assert age["MetricName"] == "IteratorAge" and age["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "EventsFunction"}}]
    waiting = template["Resources"]["EventsFailureQueueAlarm"]["Properties"]
    assert waiting["Dimensions"][0]["Value"] == {"GetAtt": "EventsFailureQueue.QueueName"}


@pytest.mark.parametrize("role, policy_file", [("StreamFunctionRole", "cruddur-messaging-stream.json"),
                                               ("EventsFunctionRole", "cruddur-messaging-events.json")])
def test_a_stream_lambdas_role_is_the_checked_policy_with_the_stacks_own_arns(template, role, policy_file):
    role = template["Resources"][role]["Properties"]
    [inline] = role["Policies"]
    in_template = {s["Sid"]: s for s in inline["PolicyDocument"]["Statement"]}
    policy = json.loads((ROOT / "aws" / "policies" / policy_file).read_text())
    in_file = {s["Sid"]: s for s in policy["Statement"]}

    def actions(statement: dict) -> set[str]:
        return set([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])

    # the file may also let the function create its log group (the stack makes it instead)
    assert set(in_template) <= set(in_file) and set(in_file) - set(in_template) <= {"CreateTheLogGroup"}
    for sid, statement in in_template.items():
        assert actions(statement) == actions(in_file[sid]), sid
        assert statement.get("Condition") == in_file[sid].get("Condition"), sid
        # ARNs of the stack's own resources, never pasted
        assert isinstance(statement["Resource"], dict), (sid, statement["Resource"])
    assert not any("*" in a for s in in_template.values() for a in actions(s))


def test_the_api_policy_is_an_output_the_checked_file_with_the_stacks_own_arns(template):
    """Issue 24, item 13: the API's managed policy comes with the stack (no table name pasted into
    a policy kept elsewhere), statement for statement aws/policies/cruddur-api.json."""
    policy = template["Resources"]["ApiPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    in_template = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    in_file = {s["Sid"]: s for s in json.loads((ROOT / "aws" / "policies" / "cruddur-api.json").read_text())["Statement"]}
    assert set(in_template) == set(in_file)
    for sid, statement in in_template.items():
        assert statement["Action"] == in_file[sid]["Action"], sid
        assert statement.get("Condition") == in_file[sid].get("Condition"), sid
        assert isinstance(statement["Resource"], dict), sid  # the stack's own table
    assert template["Outputs"]["ApiPolicyArn"]["Value"] == {"Ref": "ApiPolicy"}


def test_the_sign_up_lambda_reads_its_secret_may_run_in_a_vpc_and_is_bounded(template):
    """Issue 24, item 9: no connection URL in the stack or the function's settings; optional
    subnets and security groups; reserved concurrency for both functions."""
    assert "ConnectionUrl" not in template["Parameters"]
    function = template["Resources"]["PostConfirmationFunction"]["Properties"]
    assert function["Environment"]["Variables"]["CONNECTION_SECRET_ARN"] == {"Ref": "SignUpConnectionSecretArn"}
    assert not any("password" in str(v).lower() or "postgresql://" in str(v)
                   for v in function["Environment"]["Variables"].values())
    assert function["ReservedConcurrentExecutions"] == {"Ref": "SignUpConcurrency"}
    assert template["Resources"]["StreamFunction"]["Properties"]["ReservedConcurrentExecutions"] == \
        {"Ref": "StreamConcurrency"}
    [statement] = [s for s in template["Resources"]["PostConfirmationRole"]["Properties"]["Policies"][0]
                   ["PolicyDocument"]["Statement"] if s["Sid"] == "ReadTheConnectionSecret"]
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert statement["Resource"] == {"Ref": "SignUpConnectionSecretArn"}


def test_every_alarm_notifies_the_topic(template):
    """Issue 24, item 10."""
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail" and subscription["Properties"]["Protocol"] == "email"
    watched = {str(a["Properties"].get("MetricName")) for a in alarms.values()}
    assert {"NumberOfMessagesSent", "Errors"} <= watched
    [failed] = resources(template, "AWS::Logs::MetricFilter").values()
    assert failed["Properties"]["FilterPattern"] == "{ $.failed_groups > 0 }"
    throttling = template["Resources"]["TableThrottlingAlarm"]["Properties"]["Metrics"]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in throttling if "MetricStat" in m} == \
        {"ReadThrottleEvents", "WriteThrottleEvents"}
    errors = {a["Properties"]["Dimensions"][0]["Value"]["Ref"] for a in alarms.values()
              if a["Properties"].get("MetricName") == "Errors"}
    assert errors == {"StreamFunction", "EventsFunction", "PostConfirmationFunction"}


def test_the_import_template_declares_the_same_table():
    """aws/template-import.yaml (adopting an existing table) holds the same MessagesTable."""
    imported = yaml.load((ROOT / "aws" / "template-import.yaml").read_text(), Loader=Loader)
    full = yaml.load(TEMPLATE.read_text(), Loader=Loader)
    assert list(imported["Resources"]) == ["MessagesTable"]
    assert imported["Resources"]["MessagesTable"] == full["Resources"]["MessagesTable"]
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(ROOT / "aws" / "template-import.yaml")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_assets_bucket_is_private_encrypted_and_read_by_the_distribution_alone(template):
    """Issue 35, item 3: avatars in a private, encrypted bucket, served by CloudFront through
    origin access control, which may read avatars/ and nothing else."""
    from domain import avatars

    bucket = template["Resources"]["AssetsBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    cors = bucket["CorsConfiguration"]["CorsRules"]
    assert cors == [{"AllowedOrigins": [{"Ref": "FrontendOrigin"}], "AllowedMethods": ["PUT"],
                     "AllowedHeaders": ["content-type"], "MaxAge": 3000}]
    rule = bucket["LifecycleConfiguration"]["Rules"][0]
    assert rule["Prefix"] == avatars.UPLOADS_PREFIX and rule["ExpirationInDays"] == avatars.UPLOAD_DAYS
    notice = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert notice == [{"Event": "s3:ObjectCreated:*", "Queue": {"GetAtt": "AvatarQueue.Arn"},
                       "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": avatars.UPLOADS_PREFIX}]}}}]
    distribution = template["Resources"]["AssetsDistribution"]["Properties"]["DistributionConfig"]
    origin = distribution["Origins"][0]
    assert origin["OriginAccessControlId"] == {"GetAtt": "AssetsOriginAccessControl.Id"}
    assert origin["DomainName"] == {"GetAtt": "AssetsBucket.RegionalDomainName"}
    assert distribution["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    control = template["Resources"]["AssetsOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert control["SigningBehavior"] == "always" and control["OriginAccessControlOriginType"] == "s3"
    statements = template["Resources"]["AssetsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allows) == 1 and allows[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allows[0]["Action"] == "s3:GetObject"
    assert f"/{avatars.AVATARS_PREFIX}*" in str(allows[0]["Resource"])
    assert "AssetsDistribution" in str(allows[0]["Condition"])
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in str(s["Condition"]) for s in statements)


def test_the_avatar_lambda_reads_uploads_writes_avatars_and_reports_each_failure(template):
    from domain import avatars

    mapping = template["Resources"]["AvatarMapping"]["Properties"]
    assert mapping["EventSourceArn"] == {"GetAtt": "AvatarQueue.Arn"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = template["Resources"]["AvatarQueue"]["Properties"]
    function = template["Resources"]["AvatarFunction"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]  # as Lambda advises for a queue it reads
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"GetAtt": "AvatarDeadLetterQueue.Arn"}
    statements = {s["Sid"]: s for s in template["Resources"]["AvatarFunctionRole"]["Properties"]["Policies"][0]
                  ["PolicyDocument"]["Statement"]}
    assert statements["ReadUploads"]["Action"] == "s3:GetObject"
    assert f"/{avatars.UPLOADS_PREFIX}*" in str(statements["ReadUploads"]["Resource"])
    assert statements["WriteAvatars"]["Action"] == "s3:PutObject"
    assert f"/{avatars.AVATARS_PREFIX}*" in str(statements["WriteAvatars"]["Resource"])
    api = {s["Sid"]: s for s in template["Resources"]["ApiPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    signing = api["SignAvatarUploadsToTheUploadsPrefix"]
    assert signing["Action"] == "s3:PutObject" and f"/{avatars.UPLOADS_PREFIX}*" in str(signing["Resource"])
    from devstack import assets, stream_mapping
    assert stream_mapping.batch_size(mapping=assets.MAPPING) == mapping["BatchSize"]
