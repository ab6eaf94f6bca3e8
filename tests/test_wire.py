"""The error contract between serve and MemoryClient: every LocalmemError class survives the trip."""

from __future__ import annotations

import json

import pytest

from localmem import errors
from localmem.errors import InvalidInputError, LocalmemError, MemoryNotFoundError, ServerUnavailableError
from localmem.wire import error_body, error_from_body, status_for


def _all_error_classes() -> list[type[LocalmemError]]:
    found = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, LocalmemError)]
    assert len(found) > 10
    return found


@pytest.mark.parametrize("kind", _all_error_classes(), ids=lambda k: k.__name__)
def test_each_error_class_round_trips_with_its_status(kind: type[LocalmemError]) -> None:
    error = MemoryNotFoundError("abc") if kind is MemoryNotFoundError else kind("something\nwent wrong")
    status = status_for(error)
    body = json.loads(json.dumps(error_body(error)))
    again = error_from_body(status, body)
    assert type(again) is kind and "\n" not in str(again) and str(again) == " ".join(str(error).split())
    assert 400 <= status < 600
    if isinstance(error, InvalidInputError):
        assert 400 <= status < 500


def test_not_found_keeps_the_id_and_statuses_are_the_documented_ones() -> None:
    again = error_from_body(404, error_body(MemoryNotFoundError("id-1")))
    assert isinstance(again, MemoryNotFoundError) and again.memory_id == "id-1"
    assert status_for(errors.StoreLockedError("x")) == 409
    assert status_for(errors.InvalidFilterError("x")) == 400
    assert status_for(errors.StoreError("x")) == 503


def test_unknown_or_foreign_answers_become_clear_errors() -> None:
    assert isinstance(error_from_body(502, "<html>bad gateway</html>"), ServerUnavailableError)
    assert isinstance(error_from_body(401, {"error": "Unauthorized", "detail": "no key"}), ServerUnavailableError)
    assert isinstance(error_from_body(422, {"error": "Something", "detail": "bad"}), InvalidInputError)
    # A name that is not a LocalmemError (a builtin, say) is never instantiated from the wire.
    assert isinstance(error_from_body(500, {"error": "SystemExit", "detail": "x"}), ServerUnavailableError)
    assert isinstance(error_from_body(500, {"error": "literal", "detail": "x"}), ServerUnavailableError)
