"""SPEC S1: English and German from the `locale` parameter, English otherwise."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from timedify.web import i18n


@pytest.mark.parametrize(
    ("value", "locale"),
    [
        ("de", "de"),
        ("de-DE", "de"),
        ("de_AT", "de"),
        ("DE", "de"),
        ("en", "en"),
        ("en-US", "en"),
        ("fr", "en"),
        ("", "en"),
        (None, "en"),
        ("<script>", "en"),
    ],
)
def test_the_locale_parameter_picks_the_catalog(value: str | None, locale: str) -> None:
    assert i18n.locale_from(value) == locale


def test_both_catalogs_have_the_same_keys_and_placeholders() -> None:
    english, german = i18n.CATALOGS["en"], i18n.CATALOGS["de"]
    assert set(english) == set(german)
    for key, text in english.items():
        assert re.findall(r"{(\w+)}", text) == re.findall(r"{(\w+)}", german[key]), key


def test_the_translator_fills_placeholders() -> None:
    assert i18n.translator("de")("subscription.active_plan", name="Pro") == (
        "Dein Tarif Pro ist aktiv."
    )
    assert i18n.translator("xx")("subscription.heading") == "Subscription"


def test_dates_are_written_the_way_each_language_writes_them() -> None:
    day = datetime(2026, 3, 9)
    assert i18n.format_date(day, "en") == "2026-03-09"
    assert i18n.format_date(day, "de") == "09.03.2026"
