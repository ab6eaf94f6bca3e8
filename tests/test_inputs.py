import pytest

from localmem import InvalidInputError
from localmem.inputs import check_limit, check_metadata, check_text, check_threshold, parse_messages
from localmem.records import Scope


def test_messages_in_every_accepted_shape() -> None:
    assert parse_messages("hi")[0].role == "user"
    assert parse_messages({"role": "assistant", "content": "x"})[0].role == "assistant"
    assert len(parse_messages([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])) == 2


@pytest.mark.parametrize(
    "messages",
    ["", "   ", [], None, 42, [{"role": "user", "content": None}], [{"role": "user", "content": ["img"]}],
     [{"role": "", "content": "x"}], ["just a string in a list"]],
)
def test_bad_messages(messages: object) -> None:
    with pytest.raises(InvalidInputError):
        parse_messages(messages)


def test_metadata_must_be_json() -> None:
    assert check_metadata({"a": [1, {"b": None}]}) == {"a": [1, {"b": None}]}
    for bad in ({"a": object()}, {"a": float("nan")}, {1: "x"}, ["a"]):
        with pytest.raises(InvalidInputError):
            check_metadata(bad)


def test_scalar_checks() -> None:
    assert check_text("  x ") == "x"
    with pytest.raises(InvalidInputError):
        check_text(3)
    with pytest.raises(InvalidInputError):
        check_limit(0)
    with pytest.raises(InvalidInputError):
        check_limit(True)
    with pytest.raises(InvalidInputError):
        check_threshold("0.5")
    assert check_threshold(1) == 1.0


def test_scope_ids_are_checked_but_quotes_are_fine() -> None:
    assert Scope(user_id='o"brien').user_id == 'o"brien'
    for bad in ("", "  ", 5, "x" * 600):
        with pytest.raises(InvalidInputError):
            Scope(user_id=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="at least one"):
        Scope().require("add()")
