"""The Jinja environment the HTML pages are rendered with: templates in ``templates/``, autoescaped.

Every ``{{ value }}`` in a ``.html.j2`` template is HTML-escaped unless it is already markup (a
macro's output); undefined names raise instead of rendering empty. The CSS and script of each
page are plain files beside the templates, included as they are.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.sections import Estimate

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).with_name("templates")


@cache
def environment() -> jinja2.Environment:
    """The shared environment (built once): strict undefined names, blocks trimmed, a ``dumps``
    (JSON) filter and an ``estimate`` test."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(("html", "html.j2"), default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["dumps"] = lambda value: json.dumps(value, ensure_ascii=False)
    env.tests["estimate"] = lambda value: isinstance(value, Estimate)
    return env


def render(name: str, **context: Any) -> str:
    """The template ``name`` rendered with ``context`` (values escaped by the template)."""
    return environment().get_template(name).render(**context)


def macros(name: str, **context: Any) -> Any:
    """The template ``name`` (one of macros only) as a module: its macros are callable from Python
    and return markup; ``context`` is what they see besides their arguments."""
    return environment().get_template(name).make_module(context)
