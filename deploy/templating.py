"""The Jinja2 environment the stack's generated configs are rendered with.

The templates sit beside this module in ``deploy/templates/`` and ship with the package (the
wheel takes the whole ``deploy`` folder; the compose image copies it). Whitespace is part of the
contract: ``tests/unit/deploy/test_config_templates.py`` compares renders byte for byte with the
configs the earlier f-string renderers wrote.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


@cache
def environment() -> jinja2.Environment:
    """The shared environment, built on first use (nothing is read at import)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("deploy", "templates"),
        # NGINX and supervisord configs, not HTML: HTML escaping would turn the quotes of
        # `escape=json '{"time": ...}'` or of supervisord's environment= into entities.
        autoescape=False,  # noqa: S701 - no HTML rendered here
        # A variable the caller forgot fails the render instead of leaving an empty directive.
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        # Control lines ({% if %}, {% for %}) leave no blank line or indentation behind.
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, /, **context: Any) -> str:
    """Render ``deploy/templates/<template>`` with ``context``.

    Raises:
        jinja2.UndefinedError: the template uses a variable ``context`` lacks.
    """
    return environment().get_template(template).render(**context)
