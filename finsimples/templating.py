"""The Jinja2 environments the project's generated configs are rendered with.

Each package keeps its templates in its own ``templates/`` folder (``deploy/templates/``: NGINX,
supervisord, the compose Prometheus; ``monitoring/templates/``: the stack's Prometheus), which
ships with it (the wheel takes whole package folders; the compose image copies them).
Whitespace is part of the contract: ``tests/unit/deploy/test_config_templates.py`` compares
renders byte for byte with the configs the earlier f-string renderers wrote.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


@cache
def environment(package: str) -> jinja2.Environment:
    """The environment of ``package``'s templates, built on first use (nothing at import)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        # NGINX, supervisord and YAML configs, not HTML: HTML escaping would turn the quotes of
        # `escape=json '{"time": ...}'` or of supervisord's environment= into entities.
        autoescape=False,  # noqa: S701 - no HTML rendered here
        # A variable the caller forgot fails the render instead of leaving an empty directive.
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        # Control lines ({% if %}, {% for %}) leave no blank line or indentation behind.
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(package: str, template: str, /, **context: Any) -> str:
    """Render ``<package>/templates/<template>`` with ``context``.

    Raises:
        jinja2.UndefinedError: the template uses a variable ``context`` lacks.
    """
    return environment(package).get_template(template).render(**context)
