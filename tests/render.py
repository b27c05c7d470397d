"""Render the top-level templates with plain jinja2, as Ansible's template module would.

Only the few Ansible filters the templates use are provided here, with Ansible's behaviour
for the values the templates pass them.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import jinja2
import yaml

PROJECT = Path(__file__).resolve().parents[1]
TEMPLATES = PROJECT / "templates"


def _comment(text: str) -> str:
    return "#\n" + "\n".join(f"# {line}" for line in text.splitlines()) + "\n#"


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"yes", "on", "1", "true", "y", "t"}
    return bool(value)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,  # Ansible's template module default
        keep_trailing_newline=True,
    )
    env.filters.update(
        comment=_comment, to_json=json.dumps, bool=_bool, combine=lambda a, b: {**a, **b}, quote=shlex.quote
    )
    return env


def role_defaults(role: str, **overrides: Any) -> dict[str, Any]:
    """A role's defaults and constants with overrides, templated the way Ansible would resolve them."""
    raw = yaml.safe_load((PROJECT / "roles" / role / "defaults" / "main.yml").read_text())
    # The role's vars/main.yml too (constants, and values derived from the defaults).
    role_vars = PROJECT / "roles" / role / "vars" / "main.yml"
    constants = yaml.safe_load(role_vars.read_text()) or {} if role_vars.exists() else {}
    values = {**constants, **raw, **overrides}
    context = {
        "ansible_facts": {"processor_vcpus": 2},
        "inventory_hostname": "app1.example.com",
        "role_path": str(PROJECT / "roles" / role),
    }
    env = environment()
    for _ in range(5):  # defaults refer to each other; a few passes settle them
        for key, value in values.items():
            if key in overrides:
                continue
            if isinstance(value, str) and "{{" in value:
                try:
                    values[key] = env.from_string(value).render(**context, **values)
                except jinja2.UndefinedError:  # a value of facts these tests do not have
                    continue
            elif isinstance(value, list) and any(isinstance(item, str) and "{{" in item for item in value):
                values[key] = [
                    env.from_string(item).render(**context, **values) if isinstance(item, str) else item
                    for item in value
                ]
    return values


def render(template: str, variables: dict[str, Any]) -> str:
    context = {"ansible_managed": "Managed by Gunship (Ansible); local edits are overwritten.", **variables}
    return environment().get_template(template).render(**context)
