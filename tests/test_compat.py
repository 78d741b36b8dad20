"""compat declarations: parsing, order checks (exit 2), the old-shape threshold."""

from __future__ import annotations

import pytest
from packaging.version import Version

from zdmigrate.compat import AppCompat, parse_compat
from zdmigrate.errors import EXIT_BAD_INPUT, MigrationFileError

PATH = "migrations/0002_rename.py"


def test_parses_every_key() -> None:
    compat = parse_compat(
        {"shop": {"dual_write_from": "1.5", "read_new_from": "2.0", "old_unused_from": "2.0"}},
        PATH,
    )
    assert compat == {
        "shop": AppCompat("shop", Version("1.5"), Version("2.0"), Version("2.0"))
    }
    assert compat["shop"].as_dict() == {
        "dual_write_from": "1.5", "read_new_from": "2.0", "old_unused_from": "2.0"
    }


def test_keys_may_be_left_out_and_ints_are_versions() -> None:
    compat = parse_compat({"shop": {"read_new_from": 2}, "admin": {"old_unused_from": "3.1"}}, PATH)
    assert compat["shop"].read_new_from == Version("2")
    assert compat["shop"].dual_write_from is None
    assert compat["admin"].old_unused_from == Version("3.1")


def test_none_is_no_compat() -> None:
    assert parse_compat(None, PATH) == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["shop"], "compat must be a dict"),
        ({"shop": "2.0"}, "compat['shop'] must be a dict of versions"),
        ({"": {"read_new_from": "2.0"}}, "not a non-empty string"),
        ({"shop": {}}, "compat['shop'] declares no version"),
        ({"shop": {"read_from": "2.0"}}, "unknown key 'read_from'"),
        ({"shop": {"read_new_from": "two"}}, "'two' is not a PEP 440 version"),
        ({"shop": {"read_new_from": None}}, "None is not a PEP 440 version"),
        ({"shop": {"read_new_from": True}}, "True is not a PEP 440 version"),
        ({"shop": {"read_new_from": 1.10}}, "is a float"),
        (
            {"shop": {"dual_write_from": "2.0", "read_new_from": "1.5"}},
            "dual_write_from 2.0 is after read_new_from 1.5",
        ),
        (
            {"shop": {"read_new_from": "2.1", "old_unused_from": "2.0"}},
            "read_new_from 2.1 is after old_unused_from 2.0",
        ),
        (
            {"shop": {"dual_write_from": "3", "old_unused_from": "2.0"}},
            "dual_write_from 3 is after old_unused_from 2.0",
        ),
    ],
)
def test_bad_declarations_are_bad_input_naming_file_and_app(value: object, expected: str) -> None:
    with pytest.raises(MigrationFileError) as info:
        parse_compat(value, PATH, line=7)
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert expected in str(info.value)
    assert str(info.value).startswith(f"{PATH}:7: ")


def test_equal_thresholds_are_fine() -> None:
    compat = parse_compat({"shop": {"dual_write_from": "2.0", "read_new_from": "2.0",
                                    "old_unused_from": "2.0"}}, PATH)
    assert compat["shop"].old_shape_until == ("old_unused_from", Version("2.0"))


def test_old_shape_until_falls_back_to_the_highest_threshold_given() -> None:
    assert AppCompat("a", read_new_from=Version("2")).old_shape_until == (
        "read_new_from", Version("2"))
    assert AppCompat("a", dual_write_from=Version("1.5")).old_shape_until == (
        "dual_write_from", Version("1.5"))
    assert AppCompat("a").old_shape_until is None
