"""Each role's meta/argument_specs.yml names exactly the variables of its defaults/main.yml,
with a type and a description for each, and the types agree with the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
ROLES = sorted(p.parent.parent.name for p in PROJECT.glob("roles/*/defaults/main.yml"))
PYTHON_TYPES = {"str": str, "int": int, "bool": bool, "list": list, "dict": dict}


def options(role: str) -> dict[str, dict]:
    specs = yaml.safe_load((PROJECT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"]


def defaults(role: str) -> dict[str, object]:
    return yaml.safe_load((PROJECT / "roles" / role / "defaults" / "main.yml").read_text())


@pytest.mark.parametrize("role", ROLES)
def test_the_spec_names_exactly_the_defaults(role: str) -> None:
    assert sorted(options(role)) == sorted(defaults(role))


@pytest.mark.parametrize("role", ROLES)
def test_every_option_has_a_type_and_a_description(role: str) -> None:
    for name, option in options(role).items():
        assert option.get("type") in {*PYTHON_TYPES, "raw"}, name
        assert len(option.get("description", "")) > 10, name


@pytest.mark.parametrize("role", ROLES)
def test_the_defaults_have_the_types_the_spec_gives(role: str) -> None:
    specs = options(role)
    for name, value in defaults(role).items():
        kind = specs[name]["type"]
        if value is None or kind == "raw" or (isinstance(value, str) and "{{" in value):
            continue  # templated or unset: resolved at run time, checked by the preflight
        assert isinstance(value, PYTHON_TYPES[kind]), f"{name}: {value!r} is not {kind}"
        if "choices" in specs[name]:
            assert value in specs[name]["choices"], name


def test_no_two_options_share_a_description() -> None:
    """Each option says what it is on its own: a description copied onto several options
    (a block comment of the defaults file) tells `ansible-doc` readers nothing about which is which."""
    seen: dict[str, str] = {}
    shared = []
    for role in ROLES:
        for name, option in options(role).items():
            text = " ".join(option.get("description", "").split())
            if text in seen:
                shared.append(f"{name} has the description of {seen[text]}")
            seen.setdefault(text, name)
    assert shared == []
