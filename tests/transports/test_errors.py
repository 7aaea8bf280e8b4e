"""The one error table: every AicfError in aicf answers with a code of its own range (STYLE §4)."""

import importlib
import pkgutil

import pytest

import aicf
from aicf.core.errors import AicfError, RequestError
from aicf.transports.errors import (
    INTERNAL_ERROR,
    INTERNAL_MESSAGE,
    RPC_ERRORS,
    BadSignatureError,
    InvalidParamsError,
    code_of,
    error_object,
)

STANDARD = {-32700, -32600, -32601, -32602}


def _every_aicf_module() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(aicf.__path__, "aicf."):
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as exc:  # an optional extra (stim, psycopg) that is not installed
            if exc.name is not None and exc.name.split(".")[0] == "aicf":
                raise
            continue
        names.append(info.name)
    return names


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    stack = [cls]
    while stack:
        subs: list[type] = stack.pop().__subclasses__()
        for sub in subs:
            if sub not in found:
                found.add(sub)
                stack.append(sub)
    return found


def test_every_aicf_error_subclass_resolves_to_an_aicf_or_standard_code() -> None:
    assert len(_every_aicf_module()) > 40
    classes = {c for c in _subclasses(AicfError) if c.__module__.startswith("aicf.")}
    assert len(classes) > 20
    for cls in sorted(classes, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
        code = code_of(cls)
        assert code in STANDARD or -32099 <= code <= -32000, f"{cls.__module__}.{cls.__qualname__}: {code}"


def test_every_row_of_the_table_is_in_a_legal_range() -> None:
    for cls, (code, _) in RPC_ERRORS.items():
        assert issubclass(cls, AicfError), cls
        assert code in STANDARD or -32099 <= code <= -32000, (cls, code)


def test_the_most_specific_row_wins() -> None:
    assert code_of(BadSignatureError) == -32056
    assert code_of(RequestError) == -32013
    assert code_of(type("NewError", (AicfError,), {})) == -32000
    assert code_of(ValueError) == INTERNAL_ERROR


def test_an_unexpected_exception_becomes_a_bland_internal_error() -> None:
    assert error_object(KeyError("db password is hunter2")) == {"code": INTERNAL_ERROR, "message": INTERNAL_MESSAGE}


def test_invalid_params_carry_every_problem_as_data() -> None:
    error = error_object(InvalidParamsError([("a", "bad"), ("b.c", "worse")]))
    assert error["code"] == -32602
    assert error["message"] == "invalid params: a: bad (and 1 more)"
    assert error["data"] == {"errors": [{"field": "a", "reason": "bad"}, {"field": "b.c", "reason": "worse"}]}


@pytest.mark.parametrize("cls", [RequestError])
def test_an_aicf_error_keeps_its_own_message(cls: type[RequestError]) -> None:
    assert error_object(cls("tier", "must be 0..3")) == {
        "code": -32013,
        "message": "request rejected: tier: must be 0..3",
    }
