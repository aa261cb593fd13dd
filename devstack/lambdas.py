"""The Lambdas of aws/lambdas/, loaded from their files: each is named as deployed (with hyphens),
so none can be imported by name. Used where the same code runs outside Lambda: the local stream
worker calls the stream Lambda, the local pool the sign-up Lambda's pre-sign-up check."""
from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType, SimpleNamespace

from lib.config import LAMBDAS

__all__ = ["LAMBDAS", "context", "load"]


def load(path: Path) -> ModuleType:
    """A new module of the Lambda at `path` (each call its own, with its own cached clients)."""
    spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # registered before it runs, as an import would (its dataclasses look their module up)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def context(function_name: str, remaining_ms: int = 60_000) -> SimpleNamespace:
    """The parts of Lambda's context object a handler may look at, for one invocation."""
    return SimpleNamespace(aws_request_id=str(uuid.uuid4()), function_name=function_name,
                           get_remaining_time_in_millis=lambda: remaining_ms)
