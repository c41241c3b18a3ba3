"""gettext catalogs: French when the locale is French, English otherwise."""

from __future__ import annotations

import gettext
import os
from importlib import resources

DOMAIN = "tacops"


def _locale_dir() -> str:
    return str(resources.files("tacops") / "locale")


def _languages() -> list[str] | None:
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value:
            return [part.split(".")[0] for part in value.split(":")]
    return None


def translation() -> gettext.NullTranslations:
    return gettext.translation(DOMAIN, localedir=_locale_dir(), languages=_languages(), fallback=True)


def _(message: str) -> str:
    """Translate ``message`` with the catalog of the current locale (looked up per call)."""
    return translation().gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return translation().ngettext(singular, plural, count)
