"""The embedded page's words in English and German (SPEC S1), chosen by the `locale` parameter.

The admin passes the merchant's language as `locale` (`de`, `de-DE`, `en-US`, ...); its primary
subtag picks the catalog, anything else falls back to English.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

DEFAULT = "en"

CATALOGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Timedify",
        "subscription.heading": "Subscription",
        "subscription.active": "Active",
        "subscription.active_plan": "Your plan {name} is active.",
        "subscription.period_end": "The current billing period ends on {date}.",
        "subscription.test": "Test charge",
        "subscription.inactive": "No active subscription",
        "subscription.inactive_text": (
            "Choose a plan to show the Timedify block in your store. "
            "Until then it stays hidden from your customers."
        ),
        "subscription.choose_plan": "Choose a plan",
        "subscription.unknown": "Subscription state unavailable",
        "subscription.unknown_text": (
            "Shopify did not tell us your subscription state just now. Reload the page in a moment."
        ),
        "theme.heading": "Add Timedify to your theme",
        "theme.text": (
            "The theme editor opens on your home page with the Timedify block added in a new "
            "Apps section. Position it, adjust its settings and save the theme."
        ),
        "theme.button": "Open the theme editor",
        "how.heading": "How it works",
        "how.step1": "Add the Timedify block to your theme with the button above.",
        "how.step2": "Set when it starts and what it shows in the block's settings.",
        "how.step3": (
            "Your store shows the block from that moment on, as long as your subscription "
            "is active."
        ),
        "bounce.title": "Loading…",
        "error.title": "Timedify cannot open",
        "error.invalid_request": (
            "This page opens from your Shopify admin. Open Timedify from the Apps section "
            "of your admin."
        ),
        "error.invalid_session": (
            "Your admin session could not be confirmed. Open Timedify again from your admin."
        ),
        "error.shop_mismatch": (
            "This link belongs to another store. Open Timedify from the admin of the store "
            "you want to manage."
        ),
        "error.shopify_auth": (
            "Shopify did not authorize Timedify for your store. Reinstall the app from your "
            "admin or contact support if it keeps happening."
        ),
        "error.shopify_unavailable": (
            "Shopify is not answering right now. Reload the page in a moment."
        ),
        "error.reference": "Reference: {reason}",
    },
    "de": {
        "title": "Timedify",
        "subscription.heading": "Abonnement",
        "subscription.active": "Aktiv",
        "subscription.active_plan": "Dein Tarif {name} ist aktiv.",
        "subscription.period_end": "Der aktuelle Abrechnungszeitraum endet am {date}.",
        "subscription.test": "Testabrechnung",
        "subscription.inactive": "Kein aktives Abonnement",
        "subscription.inactive_text": (
            "Wähle einen Tarif, damit der Timedify-Block in deinem Shop erscheint. "
            "Bis dahin bleibt er für deine Kunden verborgen."
        ),
        "subscription.choose_plan": "Tarif auswählen",
        "subscription.unknown": "Abonnementstatus nicht verfügbar",
        "subscription.unknown_text": (
            "Shopify hat uns deinen Abonnementstatus gerade nicht genannt. "
            "Lade die Seite gleich noch einmal."
        ),
        "theme.heading": "Timedify zu deinem Theme hinzufügen",
        "theme.text": (
            "Der Theme-Editor öffnet sich auf deiner Startseite, mit dem Timedify-Block in "
            "einem neuen Apps-Abschnitt. Platziere ihn, passe die Einstellungen an und "
            "speichere das Theme."
        ),
        "theme.button": "Theme-Editor öffnen",
        "how.heading": "So funktioniert es",
        "how.step1": "Füge den Timedify-Block mit der Schaltfläche oben zu deinem Theme hinzu.",
        "how.step2": "Lege in den Einstellungen des Blocks fest, wann er startet und was er zeigt.",
        "how.step3": (
            "Dein Shop zeigt den Block ab diesem Zeitpunkt, solange dein Abonnement aktiv ist."
        ),
        "bounce.title": "Wird geladen…",
        "error.title": "Timedify kann nicht geöffnet werden",
        "error.invalid_request": (
            "Diese Seite öffnet sich aus deinem Shopify-Adminbereich. Öffne Timedify über den "
            "Apps-Bereich deines Adminbereichs."
        ),
        "error.invalid_session": (
            "Deine Sitzung im Adminbereich konnte nicht bestätigt werden. Öffne Timedify erneut "
            "aus deinem Adminbereich."
        ),
        "error.shop_mismatch": (
            "Dieser Link gehört zu einem anderen Shop. Öffne Timedify im Adminbereich des "
            "Shops, den du verwalten möchtest."
        ),
        "error.shopify_auth": (
            "Shopify hat Timedify für deinen Shop nicht autorisiert. Installiere die App über "
            "deinen Adminbereich neu oder wende dich an den Support, wenn es wieder passiert."
        ),
        "error.shopify_unavailable": (
            "Shopify antwortet gerade nicht. Lade die Seite gleich noch einmal."
        ),
        "error.reference": "Referenz: {reason}",
    },
}

_DATE_FORMATS = {"en": "%Y-%m-%d", "de": "%d.%m.%Y"}


def locale_from(value: str | None) -> str:
    """The catalog for a `locale` parameter: its primary language if we have it, else English."""
    primary = (value or "").replace("_", "-").split("-", 1)[0].strip().lower()
    return primary if primary in CATALOGS else DEFAULT


def translator(locale: str) -> Callable[..., str]:
    """`t(key, **values)` for the templates; a key missing in German falls back to English."""
    catalog = CATALOGS.get(locale, CATALOGS[DEFAULT])

    def t(key: str, **values: Any) -> str:
        text = catalog.get(key) or CATALOGS[DEFAULT][key]
        return text.format(**values) if values else text

    return t


def format_date(value: datetime, locale: str) -> str:
    """A date as the merchant's language writes it."""
    return value.strftime(_DATE_FORMATS.get(locale, _DATE_FORMATS[DEFAULT]))
