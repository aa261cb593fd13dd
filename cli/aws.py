"""bin/aws/*: the AWS side as code (aws/template.yaml): deploy it, destroy it.

`deploy` packages the Lambdas, uploads them to the stack's artifacts bucket, creates or updates
the stack through a change set, prints the change set and (with --prod) asks before executing
it, follows the stack's events until it settles, and prints its outputs; a failed deploy exits
non-zero with the failing resources' reasons. Without --prod it deploys into the local stack's
endpoint (moto), so it can be tried offline.
"""
from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import click

from lib import aws, lambda_support
from cli import common
from lib.config import LAMBDAS, ROOT, Settings
from lib.ddb import Ddb

TEMPLATE = ROOT / "aws" / "template.yaml"
STREAM_LAMBDA = LAMBDAS / "cruddur-messaging-stream.py"
POST_CONFIRMATION_LAMBDA = LAMBDAS / "cruddur-post-confirmation.py"


def locked(package: str) -> str:
    """The version requirements-dev.txt pins `package` at: a Lambda gets the wheels the project
    runs and tests with, from one place."""
    found = re.search(rf"^{re.escape(package)}==([^\s;\\]+)", (ROOT / "requirements-dev.txt").read_text(), re.M)
    if found is None:
        raise RuntimeError(f"requirements-dev.txt pins no {package}")
    return found.group(1)


# What the post-confirmation Lambda needs beside its file, for Lambda's Python and platform.
POST_CONFIRMATION_REQUIREMENTS = [f"psycopg[binary]=={locked('psycopg')}"]
# What each Lambda needs beside its file: the project's modules it imports (found by
# `project_modules`, so a module moved or added is packaged without a list to keep), and the
# statements those modules read.
EVENTS_LAMBDA = LAMBDAS / "cruddur-messaging-events.py"
AVATAR_LAMBDA = LAMBDAS / "cruddur-avatar-processing.py"
# What the avatar Lambda needs beside its file: Pillow.
AVATAR_REQUIREMENTS = [f"pillow=={locked('pillow')}"]
STATEMENTS = {POST_CONFIRMATION_LAMBDA: sorted((ROOT / "db" / "sql" / "users").glob("*.sql")),
              EVENTS_LAMBDA: sorted((ROOT / "db" / "sql" / "events").glob("*.sql"))}
LAMBDA_PYTHON = "3.12"
# The wheels Lambda's python3.12 (Amazon Linux 2023, glibc 2.34) runs: the older manylinux tag,
# and the one newer releases (Pillow 12) publish only.
LAMBDA_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
SETTLED_FAILURES = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE",
                    "UPDATE_ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED", "UPDATE_FAILED")


def project_modules(path: Path) -> list[Path]:
    """The project's modules (under lib/ and domain/) that `path` imports when it is loaded, and
    those they import in turn, with their packages' __init__.py: what runs in a Lambda, the same
    files the API runs. Imports inside functions (a module that needs something only on a path a
    Lambda never takes) and under TYPE_CHECKING are left out."""
    found: set[Path] = set()
    todo = [path]
    while todo:
        tree = ast.parse(todo.pop().read_text())
        for node in tree.body:
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                continue
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] not in ("lib", "domain"):
                    continue
                for depth in range(1, len(parts) + 1):
                    base = ROOT.joinpath(*parts[:depth])
                    for candidate in (base / "__init__.py", base.with_suffix(".py")):
                        if candidate.is_file() and candidate not in found:
                            found.add(candidate)
                            todo.append(candidate)
    return sorted(found)


def files_of(handler: Path) -> list[Path]:
    """What goes beside a Lambda's handler in its package: its modules and their statements."""
    return project_modules(handler) + STATEMENTS.get(handler, [])


def package(path: Path, requirements: list[str] | None = None,
            modules: list[Path] | None = None, files: dict[str, bytes] | None = None) -> bytes:
    """A Lambda's zip: its file, the project's `modules` under their paths in the repository,
    `files` (name: content) at its root, and the wheels of `requirements` for Lambda's platform
    (from the package index) when given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, path.name)
        for module in modules or []:
            archive.write(module, module.relative_to(ROOT).as_posix())
        for name, content in (files or {}).items():
            archive.writestr(name, content)
        if requirements:
            with tempfile.TemporaryDirectory() as target:
                subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", target,
                                *[arg for platform in LAMBDA_PLATFORMS for arg in ("--platform", platform)],
                                "--implementation", "cp",
                                "--python-version", LAMBDA_PYTHON, "--only-binary=:all:", *requirements],
                               check=True)
                for file in sorted(Path(target).rglob("*")):
                    if file.is_file():
                        archive.write(file, file.relative_to(target))
    return buffer.getvalue()


def parameters_of(values: tuple[str, ...], env: dict[str, str]) -> dict[str, str]:
    """KEY=VALUE options, over STACK_PARAMETERS (KEY=VALUE,KEY=VALUE) from the environment."""
    pairs: list[str] = []
    for piece in [p for p in env.get("STACK_PARAMETERS", "").split(",") if p]:
        if "=" not in piece and pairs:  # a list's next value: SubnetIds=subnet-a,subnet-b
            pairs[-1] += f",{piece}"
        else:
            pairs.append(piece)
    parameters = {}
    for pair in pairs + list(values):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--parameter")
        parameters[key.strip()] = value
    return parameters


# What the Lambdas that reach PostgreSQL need to be deployed, and what to pass when it is missing.
VPC_NEEDED = ("the sign-up and events Lambdas reach PostgreSQL inside your VPC only (the database is "
              "never public): pass -p SubnetIds=subnet-aaa,subnet-bbb -p SecurityGroupIds=sg-ccc (private "
              "subnets with routes to Secrets Manager and DynamoDB; a security group that PostgreSQL's lets "
              "in on 5432); docs/deployment.md, 'The database'")
CA_BUNDLE_NEEDED = ("pass --rds-ca-bundle FILE (or RDS_CA_BUNDLE=FILE): Amazon RDS's certificate bundle "
                    "(global-bundle.pem; docs/deployment.md says where to download it), which the Lambdas "
                    "check the database's certificate against")


def ca_bundle(path: str | None, prod: bool) -> dict[str, bytes]:
    """The RDS certificate bundle to package beside the Lambdas that reach PostgreSQL (required
    with --prod; locally, where no Lambda connects, packaged when given)."""
    if not path:
        if prod:
            raise click.ClickException(CA_BUNDLE_NEEDED)
        return {}
    from cryptography import x509

    data = Path(path).read_bytes()
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates or not all(_is_ca(c) for c in certificates):
        raise click.ClickException(f"{path} holds no PEM certificates of certificate authorities: {CA_BUNDLE_NEEDED}")
    return {lambda_support.RDS_CA_BUNDLE: data}


def _is_ca(certificate: Any) -> bool:
    from cryptography import x509

    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def stack_status(cfn: Any, name: str) -> str | None:
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except cfn.exceptions.ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


def table_exists(settings: Settings, name: str) -> bool:
    return Ddb(settings.with_(ddb_table=name)).table_exists()


def assets_bucket_name(stack: str, account: str, region: str) -> str:
    """The assets bucket's name (the template's AssetsBucketName), unless one is given."""
    return f"{stack}-assets-{account}-{region}".lower()


def artifacts_bucket(s3: Any, stack: str, account: str, region: str) -> str:
    """The stack's artifacts bucket, made if missing; refused when another account owns it.

    Its name is predictable, and S3 names are global: another account could create it first and
    receive the Lambdas' code (and have its own code deployed). So the bucket is used only when it
    is among this account's own buckets, and every request to it says which account must own it
    (ExpectedBucketOwner: S3 refuses the request otherwise, even if ownership changed since)."""
    bucket = f"{stack}-artifacts-{account}-{region}".lower()
    owned = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket in owned:
        return bucket
    extra = ({} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}})
    try:
        s3.create_bucket(Bucket=bucket, **extra)
    except s3.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou") and bucket not in \
                {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            raise click.ClickException(
                f"the artifacts bucket {bucket} belongs to another account: refusing to upload the "
                f"Lambdas' code to it (deploy with another --stack-name)") from None
        if code != "BucketAlreadyOwnedByYou":
            raise
    s3.put_public_access_block(Bucket=bucket, ExpectedBucketOwner=account, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    return bucket


# Each Lambda that reaches PostgreSQL does so as its own database user (bin/db/lambda-users), with
# its URL in its own secret: (parameter of the secret's ARN, parameter of a URL to store in it, the
# variable holding the URL with --prod, the secret's name after the stack's, its database user).
CONNECTIONS = (
    ("EventsConnectionSecretArn", "EventsConnectionUrl", "PROD_EVENTS_CONNECTION_URL", "events-connection-url",
     "cruddur_events"),
    ("SignUpConnectionSecretArn", "SignUpConnectionUrl", "PROD_SIGN_UP_CONNECTION_URL", "sign-up-connection-url",
     "cruddur_sign_up"),
)


def connection_secret(settings: Settings, stack: str, prod: bool, which: tuple[str, ...],
                      url: str | None = None) -> str:
    """The ARN of the secret holding one Lambda's PostgreSQL URL (`url`; else its PROD_*
    variable with --prod, the local database without), made or updated: the URL goes to Secrets
    Manager, never into the stack's parameters or the function's settings."""
    arn_parameter, url_parameter, variable, name, user = which
    url = url or (os.environ.get(variable) if prod else settings.connection_url)
    if not url:
        raise click.ClickException(f"set {variable} (postgresql://{user}:<password>@<host>:5432/cruddur; "
                                   f"bin/db/lambda-users makes that user), or pass -p {arn_parameter}=<the ARN "
                                   f"of a secret you made>")
    secrets = aws.client(settings, "secretsmanager")
    name = f"{stack}/{name}"
    try:
        return secrets.create_secret(Name=name, SecretString=url,
                                     Description=f"PostgreSQL URL of a Lambda of {stack}, as {user}")["ARN"]
    except secrets.exceptions.ResourceExistsException:
        return secrets.put_secret_value(SecretId=name, SecretString=url)["ARN"]


def upload(settings: Settings, stack: str, prod: bool, database_files: dict[str, bytes]) -> dict[str, str]:
    """Package the Lambdas into the stack's artifacts bucket (`database_files` beside those that
    reach PostgreSQL: the certificate bundle); the template's code parameters."""
    s3 = aws.client(settings, "s3")
    account = aws.client(settings, "sts").get_caller_identity()["Account"]
    bucket = artifacts_bucket(s3, stack, account, settings.aws_region)
    keys = {}
    for parameter, path, requirements, modules, files in (
            ("StreamFunctionKey", STREAM_LAMBDA, None, files_of(STREAM_LAMBDA), None),
            ("EventsFunctionKey", EVENTS_LAMBDA, POST_CONFIRMATION_REQUIREMENTS if prod else None,
             files_of(EVENTS_LAMBDA), database_files),
            # locally no Lambda runs the code: its dependencies need not come from the index
            ("PostConfirmationFunctionKey", POST_CONFIRMATION_LAMBDA,
             POST_CONFIRMATION_REQUIREMENTS if prod else None,
             files_of(POST_CONFIRMATION_LAMBDA), database_files),
            ("AvatarFunctionKey", AVATAR_LAMBDA, AVATAR_REQUIREMENTS if prod else None, files_of(AVATAR_LAMBDA), None)):
        data = package(path, requirements, modules, files)
        key = f"{path.stem}-{hashlib.sha256(data).hexdigest()[:16]}.zip"
        s3.put_object(Bucket=bucket, Key=key, Body=data, ExpectedBucketOwner=account)
        keys[parameter] = key
    return {"CodeBucket": bucket, **keys}


def wait_for_change_set(cfn: Any, change_set: str) -> dict[str, Any]:
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return described
        time.sleep(1)


def follow(cfn: Any, stack: str, since: set[str]) -> str:
    """Print the stack's new events until it settles; its final status. (`stack` is best its id:
    a deleted stack is found by id only; one that is found no more is deleted.)"""
    while True:
        try:
            events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
        except cfn.exceptions.ClientError as error:
            if "does not exist" in str(error):
                return "DELETE_COMPLETE"
            raise
        for event in reversed(events):
            if event["EventId"] not in since:
                since.add(event["EventId"])
                reason = event.get("ResourceStatusReason") or ""
                click.echo(f"  {event['LogicalResourceId']:<28} {event['ResourceStatus']:<22} {reason}".rstrip())
        status = stack_status(cfn, stack) or "DELETE_COMPLETE"
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(2)


def failures(cfn: Any, stack: str) -> list[str]:
    return [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
            for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]
            if e["ResourceStatus"].endswith("_FAILED")]


def stack_option(fn: Any) -> Any:
    return click.option("--stack-name", default="cruddur", show_default=True, envvar="STACK_NAME",
                        show_envvar=True, help="The CloudFormation stack.")(fn)


@click.group()
def cli() -> None:
    """The AWS side as code: aws/template.yaml."""


@cli.command()
@stack_option
@click.option("--parameter", "-p", multiple=True, metavar="KEY=VALUE",
              help="A template parameter (also STACK_PARAMETERS=KEY=VALUE,KEY=VALUE).")
@click.option("--rds-ca-bundle", envvar="RDS_CA_BUNDLE", metavar="FILE",
              help="Amazon RDS's certificate bundle, packaged beside the Lambdas that reach PostgreSQL "
                   "(required with --prod).")
@common.yes_option
@common.target_option
def deploy(settings: Settings, prod: bool, stack_name: str, parameter: tuple[str, ...], yes: bool,
           rds_ca_bundle: str | None) -> None:
    """Create or update the stack through a change set (asks before executing it with --prod)."""
    if prod and not yes and not sys.stdin.isatty():  # before anything is sent to AWS
        raise click.ClickException("refusing to deploy to AWS without a terminal to confirm the change "
                                   "set on (pass --yes if you really mean it)")
    given = parameters_of(parameter, dict(os.environ))
    if not given.get("SubnetIds", "").strip(", ") or not given.get("SecurityGroupIds", "").strip(", "):
        raise click.ClickException(VPC_NEEDED)  # before anything is sent to AWS too
    database_files = ca_bundle(rds_ca_bundle, prod)
    cfn = aws.client(settings, "cloudformation")
    status = stack_status(cfn, stack_name)
    if status == "ROLLBACK_COMPLETE":
        raise click.ClickException(f"stack {stack_name} is ROLLBACK_COMPLETE (its creation failed): "
                                   f"destroy it first")
    values = {"TableName": settings.ddb_table, "FrontendOrigin": settings.frontend_url.rstrip("/"), **given}
    if not values.get("AssetsBucketName"):
        account = aws.client(settings, "sts").get_caller_identity()["Account"]
        values["AssetsBucketName"] = assets_bucket_name(stack_name, account, settings.aws_region)
    if status is None and table_exists(settings, values["TableName"]):
        # CloudFormation would fail the new stack on it and leave it ROLLBACK_COMPLETE
        raise click.ClickException(
            f"table {values['TableName']} exists already, and a new stack cannot create it: bring it "
            f"under the stack by resource import (docs/deployment.md, 'Adopting the table you have'), or deploy "
            f"with another DDB_MESSAGE_TABLE")
    for which in CONNECTIONS:  # a URL given as a parameter is stored in its secret
        url = values.pop(which[1], None)
        if not values.get(which[0]):
            values[which[0]] = connection_secret(settings, stack_name, prod, which, url)
    values.update(upload(settings, stack_name, prod, database_files))
    kind = "CREATE" if status is None else "UPDATE"
    name = f"deploy-{time.strftime('%Y%m%d%H%M%S')}"
    created = cfn.create_change_set(
        StackName=stack_name, ChangeSetName=name, ChangeSetType=kind, TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(values.items())],
        Capabilities=["CAPABILITY_IAM"])
    described = wait_for_change_set(cfn, created["Id"])
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        cfn.delete_change_set(ChangeSetName=created["Id"])
        if "didn't contain changes" in reason or "No updates" in reason:
            click.echo(f"stack {stack_name}: no changes")
            return
        raise click.ClickException(f"change set failed: {reason}")
    click.echo(f"change set {name} ({kind}) of stack {stack_name}:")
    for change in described.get("Changes", []):
        c = change["ResourceChange"]
        click.echo(f"  {c['Action']:<8} {c['LogicalResourceId']:<28} {c['ResourceType']:<34} "
                   f"{c.get('Replacement', '')}".rstrip())
    if prod and not yes:
        if not click.confirm("Execute this change set?", default=False):
            cfn.delete_change_set(ChangeSetName=created["Id"])
            raise click.Abort()
    seen = {e["EventId"] for e in cfn.describe_stack_events(StackName=stack_name)["StackEvents"]} if status else set()
    cfn.execute_change_set(ChangeSetName=created["Id"])
    final = follow(cfn, stack_name, seen)
    if final in SETTLED_FAILURES or not final.endswith("_COMPLETE"):
        raise click.ClickException(f"stack {stack_name}: {final}; " + "; ".join(failures(cfn, stack_name)))
    click.echo(f"stack {stack_name}: {final}")
    for output in cfn.describe_stacks(StackName=stack_name)["Stacks"][0].get("Outputs") or []:
        click.echo(f"  {output['OutputKey']:<28} {output['OutputValue']}")


@cli.command()
@stack_option
@common.target_option
def destroy(settings: Settings, prod: bool, stack_name: str) -> None:
    """Delete the stack (the table is retained: DeletionPolicy Retain). Asks twice with --prod."""
    if prod and not sys.stdin.isatty():  # before anything is sent to AWS
        raise click.ClickException("refusing to destroy a stack on AWS without a terminal to ask")
    cfn = aws.client(settings, "cloudformation")
    if stack_status(cfn, stack_name) is None:
        click.echo(f"stack {stack_name} does not exist")
        return
    if prod:
        if not click.confirm(f"Delete the stack {stack_name} on AWS (its Lambdas, roles, queue, alarms)?",
                             default=False):
            raise click.Abort()
        if click.prompt("Type the stack's name to confirm", default="", show_default=False) != stack_name:
            raise click.Abort()
    stack_id = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]["StackId"]
    seen = {e["EventId"] for e in cfn.describe_stack_events(StackName=stack_id)["StackEvents"]}
    cfn.delete_stack(StackName=stack_name)
    final = follow(cfn, stack_id, seen)
    if final != "DELETE_COMPLETE":
        raise click.ClickException(f"stack {stack_name}: {final}")
    click.echo(f"stack {stack_name}: deleted (the table {settings.ddb_table} is kept)")


def stack_resources(cfn: Any, stack: str) -> dict[str, str]:
    """{logical id: physical id} of the stack's resources (the queue's URL, the function's name,
    the table's name)."""
    if stack_status(cfn, stack) is None:
        raise click.ClickException(f"stack {stack} does not exist")
    found: dict[str, str] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        found.update({r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
                      for r in page["StackResourceSummaries"] if r.get("LogicalResourceId")})
    return found


def batch_records(streams: Any, batch: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The stream records a failure message names (DDBStreamBatchInfo: shard, first and last
    sequence numbers), or None when the stream no longer holds them (it keeps 24 hours)."""
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=batch["streamArn"], ShardId=batch["shardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=batch["startSequenceNumber"])["ShardIterator"]
    except (streams.exceptions.TrimmedDataAccessException, streams.exceptions.ResourceNotFoundException):
        return None
    end, records = int(batch["endSequenceNumber"]), []
    while iterator:
        response = streams.get_records(ShardIterator=iterator, Limit=1000)
        for record in response.get("Records", []):
            if int(record["dynamodb"]["SequenceNumber"]) > end:
                return records
            records.append(record)
        if not response.get("Records") or int(records[-1]["dynamodb"]["SequenceNumber"]) >= end:
            return records
        iterator = response.get("NextShardIterator")
    return records


@cli.command("replay-failures")
@stack_option
@click.option("--limit", default=100, show_default=True, help="At most this many failure messages.")
@common.target_option
def replay_failures(settings: Settings, prod: bool, stack_name: str, limit: int) -> None:
    """Apply again the stream records that wait in the stack's on-failure queues.

    Each message in a queue names a batch of the table's stream that a Lambda gave up on: the
    stream Lambda's (group rows) or the events Lambda's (live events), each with its own queue.
    The batch's records are read again from the stream (it keeps them 24 hours) and handed to
    the function that gave up on them (the deployed one with --prod; locally, its code in this
    process, as the local stream worker runs it), filtered as its mapping filters them. A message
    whose records were applied is deleted; one that failed again stays, for another try. Both
    functions are idempotent: replaying what was applied meanwhile changes nothing."""
    from devstack import stream_mapping
    from devstack.stream_worker import EVENTS_LAMBDA_PATH, LAMBDA_PATH, lambda_environment, load_lambda

    cfn = aws.client(settings, "cloudformation")
    resources = stack_resources(cfn, stack_name)
    if not prod:
        os.environ.update(lambda_environment(settings.with_(ddb_table=resources["MessagesTable"])))
    counts = [0, 0, 0]  # replayed, failed again, no longer in the stream
    for queue, function, path, mapping in (
            ("StreamFailureQueue", "StreamFunction", LAMBDA_PATH, stream_mapping.MOVER),
            ("EventsFailureQueue", "EventsFunction", EVENTS_LAMBDA_PATH, stream_mapping.EVENTS)):
        if queue not in resources:  # a stack deployed before it had this queue
            continue
        click.echo(f"{queue} -> {function}:")
        handle = _invoker(settings, prod, resources[function], path, load_lambda)
        done = _replay_queue(settings, resources[queue], handle, stream_mapping.stream_patterns(mapping=mapping),
                             limit - sum(counts))
        counts = [a + b for a, b in zip(counts, done)]
    click.echo(f"replayed {counts[0]}, failed again {counts[1]}, no longer in the stream {counts[2]}")
    if counts[1]:
        raise SystemExit(1)


def _invoker(settings: Settings, prod: bool, function_name: str, path: Path, load: Any) -> Any:
    """handle(event) -> whether every record was applied: the deployed function with --prod, its
    code in this process without."""
    if prod:
        functions = aws.client(settings, "lambda")

        def handle(event: dict[str, Any]) -> bool:
            answer = functions.invoke(FunctionName=function_name, Payload=json.dumps(event))
            result = json.loads(answer["Payload"].read() or b"{}")
            return "FunctionError" not in answer and not (result or {}).get("batchItemFailures")
        return handle
    handler = load(path).lambda_handler

    def handle_here(event: dict[str, Any]) -> bool:
        return not handler(event, None).get("batchItemFailures")
    return handle_here


def _replay_queue(settings: Settings, queue: str, handle: Any, patterns: Any, limit: int) -> tuple[int, int, int]:
    from devstack import stream_mapping
    from devstack.stream_worker import lambda_event

    sqs, streams = aws.client(settings, "sqs"), aws.client(settings, "dynamodbstreams")
    replayed = failed = gone = 0
    while replayed + failed + gone < limit:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=1, VisibilityTimeout=120).get("Messages", [])
        if not messages:
            break
        for message in messages:
            batch = json.loads(message["Body"]).get("DDBStreamBatchInfo") or {}
            records = batch_records(streams, batch) if batch else None
            if records is None:
                gone += 1
                click.echo(f"  {message['MessageId']}: the stream no longer holds its records (kept "
                           f"for inspection; each conversation's rows follow its next message)")
                continue
            event = lambda_event(records, batch["streamArn"], settings.aws_region)
            event["Records"] = [r for r in event["Records"] if stream_mapping.delivered(patterns, r)]
            if not event["Records"] or handle(event):
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                replayed += 1
                click.echo(f"  {message['MessageId']}: {len(event['Records'])} records applied")
            else:
                failed += 1
                click.echo(f"  {message['MessageId']}: failed again (left in the queue)")
    return replayed, failed, gone


if __name__ == "__main__":
    common.run(cli)
