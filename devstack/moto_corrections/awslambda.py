"""Correction 8 to moto's Lambda: a table's writes never depend on a function mapped to its
stream (locally the stream worker is the stream's reader)."""
from __future__ import annotations

from typing import Any

from moto.awslambda.models import LambdaBackend


def send_dynamodb_items(self: LambdaBackend, function_arn: str, items: list[Any],
                        source: str) -> None:
    """Correction 8: moto calls this inside each write to a table whose stream is mapped (also by
    a mapping deleted since), to invoke the function, and empties the stream when it returns
    something. Locally the stream worker is the stream's reader (bin/dev): nothing is invoked,
    and the records stay."""
    return None


