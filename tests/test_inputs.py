import pytest

from localmem import InvalidInputError
from localmem.inputs import (
    MAX_MESSAGES,
    MAX_METADATA_DEPTH,
    check_limit,
    check_memory_id,
    check_metadata,
    check_text,
    check_threshold,
    json_object,
    parse_messages,
)
from localmem.records import Scope


def test_messages_in_every_accepted_shape() -> None:
    assert parse_messages("hi", 100)[0].role == "user"
    assert parse_messages({"role": "assistant", "content": "x"}, 100)[0].role == "assistant"
    assert len(parse_messages([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], 100)) == 2


@pytest.mark.parametrize(
    "messages",
    ["", "   ", [], None, 42, [{"role": "user", "content": None}], [{"role": "user", "content": ["img"]}],
     [{"role": "", "content": "x"}], ["just a string in a list"]],
)
def test_bad_messages(messages: object) -> None:
    with pytest.raises(InvalidInputError):
        parse_messages(messages, 100)


def test_metadata_must_be_json() -> None:
    assert check_metadata({"a": [1, {"b": None}]}) == {"a": [1, {"b": None}]}
    for bad in ({"a": object()}, {"a": float("nan")}, {1: "x"}, ["a"]):
        with pytest.raises(InvalidInputError):
            check_metadata(bad)


def test_scalar_checks() -> None:
    assert check_text("  x ", "data", 10) == "x"
    with pytest.raises(InvalidInputError):
        check_text(3, "data", 10)
    with pytest.raises(InvalidInputError):
        check_limit(0, 10)
    with pytest.raises(InvalidInputError):
        check_limit(True, 10)
    with pytest.raises(InvalidInputError, match="maximum of 10"):
        check_limit(11, 10)
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


def test_text_size_is_counted_in_utf8_bytes_against_the_given_limit() -> None:
    assert check_text("é" * 32, "data", 64) == "é" * 32
    with pytest.raises(InvalidInputError, match="66 bytes"):
        check_text("é" * 33, "data", 64)
    with pytest.raises(InvalidInputError, match=r"messages\[1\]\['content'\] is 65 bytes"):
        parse_messages([{"role": "user", "content": "ok"}, {"role": "user", "content": "x" * 65}], 64)


@pytest.mark.parametrize("bad", ["\ud800", "ok \udc00 ok"])
def test_lone_surrogates_are_invalid_input_everywhere(bad: str) -> None:
    for check in (lambda: check_text(bad, "data", 100), lambda: parse_messages(bad, 100),
                  lambda: check_metadata({"k": bad}), lambda: check_metadata({bad: 1}),
                  lambda: check_metadata({"k": [{"deep": bad}]}), lambda: check_memory_id(bad),
                  lambda: Scope(user_id=bad)):
        with pytest.raises(InvalidInputError, match="surrogate"):
            check()


def test_deep_metadata_is_refused_without_recursion() -> None:
    deep: object = "leaf"
    for _ in range(2000):
        deep = {"k": deep}
    with pytest.raises(InvalidInputError, match="nested more than"):
        check_metadata(deep)
    ok: object = 1
    for _ in range(MAX_METADATA_DEPTH - 1):
        ok = [ok]
    assert check_metadata({"k": ok}) == {"k": ok}


def test_json_nested_too_deeply_is_invalid_input_not_a_recursion_error() -> None:
    with pytest.raises(InvalidInputError, match="filters is nested too deeply"):
        json_object("[" * 100_000 + "]" * 100_000, "filters")
    assert json_object('{"a": [[1]]}', "filters") == {"a": [[1]]}


def test_one_add_takes_at_most_max_messages() -> None:
    message = {"role": "user", "content": "x"}
    assert len(parse_messages([message] * MAX_MESSAGES, 100)) == MAX_MESSAGES
    with pytest.raises(InvalidInputError, match=f"at most {MAX_MESSAGES:,}"):
        parse_messages([message] * (MAX_MESSAGES + 1), 100)
