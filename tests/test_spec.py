"""The one spec-string parser (byzcore._spec)."""

import pytest

from byzcore._spec import SpecPart, option, parse_part, parse_spec


def test_chain_positional_and_options():
    parts = parse_spec("make_aggregator", "Bucketing:2+NNM+geometric-median:nu=0.1,max_iter=5")
    assert [p.name for p in parts] == ["bucketing", "nnm", "geometric_median"]
    assert parts[0].positional == "2"
    assert parts[0].options == {}
    assert parts[1].positional is None
    assert parts[2].options == {"nu": "0.1", "max_iter": "5"}


def test_single_part_keeps_plus_inside():
    (p,) = parse_spec("make_attack", "ipm:eps=0.5", chain=False)
    assert p == SpecPart("ipm", None, {"eps": "0.5"}, "ipm:eps=0.5")


@pytest.mark.parametrize("text", ["", "  ", "median++krum", "+median", ":3", "ipm:eps=", "ipm:=3",
                                  "tm:3,4", "ipm:eps=1,eps=2"])
def test_bad_specs_name_the_op(text):
    with pytest.raises((ValueError, TypeError), match=r"^\[op\] "):
        parse_spec("op", text)


def test_non_string_is_a_type_error():
    with pytest.raises(TypeError, match=r"^\[op\] spec must be a non-empty string"):
        parse_spec("op", 3)


def test_option_conversion_error_names_option():
    p = parse_part("op", "krum:f=x")
    with pytest.raises(ValueError, match=r"^\[op\] option f='x' of 'krum' in 'krum:f=x' must be a int"):
        option("op", p, "f", p.options["f"], int)
    assert option("op", p, "f", "7", int) == 7
