"""Per-recipient template variables: static values, recipient overrides and {{contact.*}} placeholders."""

from __future__ import annotations

import re

from wabacast.domain.models import Contact

_PLACEHOLDER = re.compile(r"\{\{\s*contact\.([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")


class MissingVariableError(Exception):
    def __init__(self, variable: str, placeholder: str) -> None:
        super().__init__(f"variable {variable}: {placeholder} has no value for this recipient")
        self.variable = variable
        self.placeholder = placeholder


def _lookup(path: str, phone_number: str, contact: Contact | None) -> str | None:
    if path == "phoneNumber":
        return phone_number
    if contact is None:
        return None
    if path == "name":
        return contact.name
    name = path.removeprefix("attributes.")
    value = contact.attributes.get(name)
    return None if value is None else str(value)


def render_variables(
    queue_variables: dict[str, str],
    recipient_variables: dict[str, str],
    phone_number: str,
    contact: Contact | None,
) -> dict[str, str]:
    """The variables one recipient's message is sent with; raises MissingVariableError when a placeholder
    names something this contact does not have (the job is then SKIPPED with that reason)."""
    rendered: dict[str, str] = {}
    for key, template in {**queue_variables, **recipient_variables}.items():

        def substitute(match: re.Match[str], key: str = key) -> str:
            value = _lookup(match.group(1), phone_number, contact)
            if value is None or value == "":
                raise MissingVariableError(key, match.group(0))
            return value

        rendered[key] = _PLACEHOLDER.sub(substitute, template)
    return rendered
