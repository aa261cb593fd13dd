"""bin/aws/*: the AWS side as code (aws/template.yaml): deploy it, destroy it.

`deploy` packages the Lambdas, uploads them to the stack's artifacts bucket, creates or updates
the stack through a change set, prints the change set and (with --prod) asks before executing
it, follows the stack's events until it settles, and prints its outputs; a failed deploy exits
non-zero with the failing resources' reasons. Without --prod it deploys into the local stack's
endpoint (moto), so it can be tried offline.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import click

from lib import aws, lambda_files
from lib.cli import common
from lib.config import ROOT, Settings
from lib.ddb import Ddb

TEMPLATE = ROOT / "aws" / "template.yaml"
STREAM_LAMBDA = lambda_files.LAMBDAS / "cruddur-messaging-stream.py"
POST_CONFIRMATION_LAMBDA = lambda_files.LAMBDAS / "cruddur-post-confirmation.py"
# What the post-confirmation Lambda needs beside its file, for Lambda's Python and platform.
POST_CONFIRMATION_REQUIREMENTS = ["psycopg[binary]==3.3.9"]
LAMBDA_PYTHON = "3.12"
SETTLED_FAILURES = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE",
                    "UPDATE_ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED", "UPDATE_FAILED")


def package(path: Path, requirements: list[str] | None = None) -> bytes:
    """A Lambda's zip: its file, and the wheels of `requirements` for Lambda's platform (from the
    package index) when given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, path.name)
        if requirements:
            with tempfile.TemporaryDirectory() as target:
                subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", target,
                                "--platform", "manylinux2014_x86_64", "--implementation", "cp",
                                "--python-version", LAMBDA_PYTHON, "--only-binary=:all:", *requirements],
                               check=True)
                for file in sorted(Path(target).rglob("*")):
                    if file.is_file():
                        archive.write(file, file.relative_to(target))
    return buffer.getvalue()


def parameters_of(values: tuple[str, ...], env: dict[str, str]) -> dict[str, str]:
    """KEY=VALUE options, over STACK_PARAMETERS (KEY=VALUE,KEY=VALUE) from the environment."""
    pairs = [p for p in env.get("STACK_PARAMETERS", "").split(",") if p] + list(values)
    parameters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--parameter")
        parameters[key.strip()] = value
    return parameters


def stack_status(cfn: Any, name: str) -> str | None:
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except cfn.exceptions.ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


def table_exists(settings: Settings, name: str) -> bool:
    return Ddb(settings.with_(ddb_table=name)).table_exists()


def upload(settings: Settings, stack: str, prod: bool) -> dict[str, str]:
    """Package both Lambdas into the stack's artifacts bucket; the template's code parameters."""
    s3 = aws.client(settings, "s3")
    account = aws.client(settings, "sts").get_caller_identity()["Account"]
    bucket = f"{stack}-artifacts-{account}-{settings.aws_region}".lower()
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        extra = ({} if settings.aws_region == "us-east-1"
                 else {"CreateBucketConfiguration": {"LocationConstraint": settings.aws_region}})
        s3.create_bucket(Bucket=bucket, **extra)
    keys = {}
    for parameter, path, requirements in (
            ("StreamFunctionKey", STREAM_LAMBDA, None),
            # locally no Lambda runs the code: its dependencies need not come from the index
            ("PostConfirmationFunctionKey", POST_CONFIRMATION_LAMBDA,
             POST_CONFIRMATION_REQUIREMENTS if prod else None)):
        data = package(path, requirements)
        key = f"{path.stem}-{hashlib.sha256(data).hexdigest()[:16]}.zip"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
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
@common.yes_option
@common.target_option
def deploy(settings: Settings, prod: bool, stack_name: str, parameter: tuple[str, ...], yes: bool) -> None:
    """Create or update the stack through a change set (asks before executing it with --prod)."""
    if prod and not yes and not sys.stdin.isatty():  # before anything is sent to AWS
        raise click.ClickException("refusing to deploy to AWS without a terminal to confirm the change "
                                   "set on (pass --yes if you really mean it)")
    cfn = aws.client(settings, "cloudformation")
    status = stack_status(cfn, stack_name)
    if status == "ROLLBACK_COMPLETE":
        raise click.ClickException(f"stack {stack_name} is ROLLBACK_COMPLETE (its creation failed): "
                                   f"destroy it first")
    values = {"TableName": settings.ddb_table,
              "ConnectionUrl": (os.environ.get("PROD_CONNECTION_URL") if prod else settings.connection_url) or "",
              **parameters_of(parameter, dict(os.environ))}
    if status is None and table_exists(settings, values["TableName"]):
        # CloudFormation would fail the new stack on it and leave it ROLLBACK_COMPLETE
        raise click.ClickException(
            f"table {values['TableName']} exists already, and a new stack cannot create it: bring it "
            f"under the stack by resource import (README, 'Adopting the table you have'), or deploy "
            f"with another DDB_MESSAGE_TABLE")
    values.update(upload(settings, stack_name, prod))
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


if __name__ == "__main__":
    common.run(cli)
