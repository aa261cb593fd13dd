"""What a test expects of a refusal: the error's kind and its one machine-readable code."""
from __future__ import annotations

from typing import Any, Callable

import pytest

from domain.errors import CruddurError


def refused(call: Callable[[], Any], kind: type[CruddurError], code: str) -> CruddurError:
    """What `call` raises: an error of `kind` with the one code `code`."""
    with pytest.raises(kind) as error:
        call()
    assert error.value.codes == [code]
    return error.value
