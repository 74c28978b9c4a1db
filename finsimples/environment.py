"""The settings' environment variables: misspelt ones refused, bad values explained.

pydantic-settings ignores a ``FINSIMPLES_*`` variable that names no field. A misspelt setting
would then be silently dropped: ``FINSIMPLES_API_KEY_HASH=...`` (no ``ES``) would leave the API
open with auth off. :class:`UnknownVariables` is a settings source that reads nothing and refuses
such variables by name, suggesting the closest setting.

:func:`describe_settings_error` turns pydantic's errors into the lines a user can act on: the
variable to fix, what is wrong with it, and its value unless the setting is a secret.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any, get_args

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from pydantic_settings.exceptions import SettingsError

PREFIX = "FINSIMPLES_"
NESTED = "__"
NOT_SETTINGS = frozenset({"HOME", "IMAGE", "IMAGE_TAG", "PROJECT_IMAGE_TAG", "LOADTEST_KEYS"})
"""``FINSIMPLES_*`` variables that are not settings: the flow image's code folder
(``FINSIMPLES_HOME``), the image tags compose and ``prefect deploy`` read, and the load test's
keys handed to Locust's own process."""
SHOWN_VALUE_CHARS = 60


def _model_of(field: FieldInfo) -> type[BaseModel] | None:
    """The settings group a field holds (``stack``, ``loadtest``...), if it is one."""
    for candidate in (field.annotation, *get_args(field.annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def setting_names(model: type[BaseModel], prefix: str = PREFIX) -> Iterator[str]:
    """Every environment variable that sets a field of ``model``, upper case."""
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name.upper()}"
        yield variable
        group = _model_of(field)
        if group is not None:
            yield from setting_names(group, variable + NESTED)


def unknown_variables(model: type[BaseModel], environ: Mapping[str, str]) -> list[str]:
    """One problem per ``FINSIMPLES_*`` variable of ``environ`` that sets nothing in ``model``.

    Args:
        model: The settings class.
        environ: The environment (names are compared case-insensitively, as the settings read
            them).

    Returns:
        ``"FINSIMPLES_X is not a setting (did you mean FINSIMPLES_Y?)"`` lines, sorted.
    """
    known = set(setting_names(model))
    known |= {PREFIX + name for name in NOT_SETTINGS}
    problems = []
    for variable in environ:
        upper = variable.upper()
        if not upper.startswith(PREFIX) or upper in known:
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(f"{variable} is not a FinSimples setting{hint}")
    return sorted(problems)


class UnknownVariables(PydanticBaseSettingsSource):
    """A settings source that contributes nothing and refuses misspelt variables."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Nothing: this source only checks."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """Raise ``SettingsError`` naming every unknown ``FINSIMPLES_*`` variable."""
        problems = unknown_variables(self.settings_cls, os.environ)
        if problems:
            raise SettingsError("; ".join(problems))
        return {}


def _is_secret(model: type[BaseModel], location: tuple[int | str, ...]) -> bool:
    """Whether the field at ``location`` holds a secret (its value is never shown)."""
    current: type[BaseModel] | None = model
    field: FieldInfo | None = None
    for part in location:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            break
        field = current.model_fields[part]
        current = _model_of(field)
    if field is None:
        return True  # unknown place: do not risk showing it
    return any(t is SecretStr for t in (field.annotation, *get_args(field.annotation)))


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > SHOWN_VALUE_CHARS:
        text = text[:SHOWN_VALUE_CHARS] + "..."
    return repr(text)


def describe_settings_error(
    error: ValidationError | SettingsError, model: type[BaseSettings]
) -> str:
    """What is wrong with the settings, one line per problem, naming the variable to fix.

    Args:
        error: What building ``model`` raised.
        model: The settings class (for the field types: secrets are never echoed).
    """
    if isinstance(error, SettingsError):
        cause = error.__cause__
        text = str(error)
        field = text.split('"')[1] if text.startswith("error parsing value for field") else None
        if field and cause is not None:
            variable = PREFIX + field.upper()
            return f'{variable}: is not valid JSON ({cause}); a list is written as ["a", "b"]'
        return text
    lines = []
    for problem in error.errors(include_url=False):
        location = tuple(problem["loc"])
        if not location:  # a check across fields: its message names them
            lines.append(f"{problem['msg']}")
            continue
        variable = PREFIX + NESTED.join(str(part).upper() for part in location)
        if problem["type"] == "extra_forbidden":  # a line of the .env file
            name = str(location[-1]).upper()
            close = difflib.get_close_matches(name, set(setting_names(model)), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]}?)" if close else ""
            lines.append(f"{name} (in the .env file) is not a FinSimples setting{hint}")
            continue
        value = "" if _is_secret(model, location) else f"={_shown(problem['input'])}"
        lines.append(f"{variable}{value}: {problem['msg']}")
    return "\n".join(lines)
