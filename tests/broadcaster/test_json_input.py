"""Strict JSON for client input: what ``json.loads`` lets through and the node must not."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadcaster.json_input import MAX_SAFE, JsonInputError, loads, nesting_depth


@pytest.mark.parametrize("raw, message", [
    ('{"a": NaN}', "NaN is not a JSON number"),
    ('{"a": Infinity}', "Infinity is not a JSON number"),
    ('[-Infinity]', "-Infinity is not a JSON number"),
    ('{"a": 1e23}', f"number 1e23 is out of range (at most ±{MAX_SAFE})"),
    ('{"a": 1e400}', f"number 1e400 is out of range (at most ±{MAX_SAFE})"),
    ('{"a": 100000000000000000000000}', f"number 100000000000000000000000 is out of range (at most ±{MAX_SAFE})"),
    ('{"a": -9007199254740992}', f"number -9007199254740992 is out of range (at most ±{MAX_SAFE})"),
    ("[" * 10_000 + "]" * 10_000, "JSON nested deeper than 32 levels"),
    ('{"a":' * 33 + "1" + "}" * 33, "JSON nested deeper than 32 levels"),
])
def test_refused_with_a_message(raw: str, message: str) -> None:
    with pytest.raises(JsonInputError) as refused:
        loads(raw)
    assert str(refused.value) == message


def test_an_integer_of_thousands_of_digits_is_refused_before_conversion() -> None:
    with pytest.raises(JsonInputError, match="out of range"):
        loads("[" + "9" * 5000 + "]")


def test_malformed_and_non_utf8_input() -> None:
    with pytest.raises(JsonInputError, match=r"^invalid JSON: Expecting"):
        loads('{"a": ')
    with pytest.raises(JsonInputError, match=r"^invalid JSON: not UTF-8"):
        loads(b'{"a": "\xff"}')


def test_limits_are_inclusive_and_brackets_in_strings_do_not_nest() -> None:
    assert loads(f'[{MAX_SAFE}, -{MAX_SAFE}, 9007199254740991.0]') == [MAX_SAFE, -MAX_SAFE, float(MAX_SAFE)]
    assert loads("[" * 32 + "]" * 32) is not None
    assert loads(json.dumps({"t": "[" * 1000 + '\\"{' * 100})) == {"t": "[" * 1000 + '\\"{' * 100}
    assert nesting_depth('{"a": [1, {"b": "]]]]"}]}', 10) == 3


@given(st.recursive(st.none() | st.booleans() | st.integers(-MAX_SAFE, MAX_SAFE) | st.text(max_size=5)
                    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children,
                                                                                       max_size=3),
                    max_leaves=20))
def test_everything_in_range_parses_as_json_loads_does(doc: object) -> None:
    raw = json.dumps(doc)
    assert loads(raw) == json.loads(raw)
