"""The least a Flask API can do here, served by ./bin/bench beside this one: for each access
pattern (and the unread summary), a route that makes only the store call the benchmark makes
directly, with the API's own DynamoDB client (`lib.aws.client`, lean), under gunicorn with the
API's settings (gunicorn.conf.py, one gevent worker). No token, no PostgreSQL, no validation, no
access log, no reshaping.

What it reaches against the store (API ÷ store, measured in the same slices) is what any API made
of Flask, gunicorn and boto3 reaches on this machine: the bound of the real API's ratio, as measured
rather than estimated. It answers only the benchmark, on 127.0.0.1.
"""
from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

from lib import aws, config

PAGE = 21  # a page of 20 and one more, to know whether there is a next page (as the API reads)


def latest_query(table: str, pk: str) -> dict[str, Any]:
    """Patterns A and B at the store: a partition's newest page."""
    return {"TableName": table, "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}}, "ScanIndexForward": False,
            "Limit": PAGE}


def summary_query(table: str, pk: str) -> dict[str, Any]:
    """The unread summary at the store: all of a user's rows, with what the API's summary reads of
    them (one page up to 1 MB of rows; the benchmark's users have far less)."""
    return {"TableName": table, "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}}, "ScanIndexForward": False,
            "ProjectionExpression": "sk, message_group_uuid, unread_count"}


def put_new(table: str, wire_item: dict[str, Any]) -> dict[str, Any]:
    """Patterns C and D at the store: a message put unless its key exists."""
    return {"TableName": table, "Item": wire_item, "ConditionExpression": "attribute_not_exists(pk)"}


def create_app() -> Flask:
    settings = config.load()
    client = aws.client(settings, "dynamodb", lean=True)
    table = settings.ddb_table
    app = Flask(__name__)

    @app.get("/api/health-check")  # where start_api waits for an app to answer
    def health_check() -> Any:
        return jsonify({"success": True})

    @app.get("/latest")
    def latest() -> Any:
        return jsonify(client.query(**latest_query(table, request.args["pk"]))["Items"])

    @app.get("/summary")
    def summary() -> Any:
        # the least answer: how many rows were read (the API's is two counts)
        return jsonify({"rows": client.query(**summary_query(table, request.args["pk"]))["Count"]})

    @app.post("/put")
    def put() -> Any:
        client.put_item(**put_new(table, request.get_json()))
        return jsonify({})

    return app
