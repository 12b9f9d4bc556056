"""Settings and catalog validation: bad configuration fails at start with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.catalog import CatalogError, load_catalog
from config.settings import Settings, SettingsError, get_settings


def test_default_catalog_is_a_full_drive_thru_menu() -> None:
    catalog = load_catalog()
    assert len(catalog.offers) >= 20 and len(catalog.stores) >= 3
    categories = {o.category for o in catalog.offers.values()}
    menu = {"hot_drinks", "cold_drinks", "breakfast", "burgers", "chicken", "salads", "sides"}
    assert menu | {"desserts"} <= categories
    for offer in catalog.offers.values():
        assert offer.price > 0 and offer.prep_s > 0 and offer.dayparts


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[[offers]]\nid='x'\n", "missing field 'dayparts'"),
        (
            "[[offers]]\nid='x'\nname='X'\ncategory='c'\nprice=-1\nprep_s=1\ndayparts=['lunch']\n"
            "[[stores]]\nid='s'\nname='S'\n",
            "price must be > 0",
        ),
        (
            "[[offers]]\nid='x'\nname='X'\ncategory='c'\nprice=1\nprep_s=1\ndayparts=['brunch']\n",
            "unknown dayparts ['brunch']",
        ),
        ("not toml [", "cannot read catalog"),
        (
            "[[offers]]\nid='x'\nname='X'\ncategory='c'\nprice=1\nprep_s=1\ndayparts=['lunch']\n"
            "[[stores]]\nid='s'\nname='S'\nexclude=['nope']\n",
            "excludes unknown offers ['nope']",
        ),
    ],
)
def test_bad_catalogs_say_what_is_wrong(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "menu.toml"
    path.write_text(body)
    with pytest.raises(CatalogError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_catalog(path)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAILOR_API_PORT", "9001")
    monkeypatch.setenv("TAILOR_KAFKA_BOOTSTRAP", "broker:9092")
    s = Settings()
    assert s.api_port == 9001 and s.kafka == "broker:9092" and not s.embedded_kafka
    assert s.redis == "redis://127.0.0.1:6379/0" and s.embedded_redis


def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAILOR_API_PORT", "eighty")
    monkeypatch.setenv("TAILOR_EXPLORE_RATE", "2")
    error = settings_error()
    assert "TAILOR_API_PORT" in error and "'eighty'" in error
    assert "TAILOR_EXPLORE_RATE" in error


def settings_error() -> str:
    """What reading the settings from the environment refuses, as the message says it."""
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError) as err:
            get_settings()
    finally:
        get_settings.cache_clear()
    return str(err.value)


def test_the_worker_web_bind_address_is_a_checked_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().worker_web_bind == "127.0.0.1"  # loopback unless asked
    monkeypatch.setenv("TAILOR_WORKER_WEB_BIND", "0.0.0.0")
    assert Settings().worker_web_bind == "0.0.0.0"
    assert Settings().as_env()["TAILOR_WORKER_WEB_BIND"] == "0.0.0.0"  # reaches child processes
    monkeypatch.setenv("TAILOR_WORKER_WEB_BIND", "0.0.0.0:6066")
    error = settings_error()
    assert "TAILOR_WORKER_WEB_BIND" in error and "IP address" in error


def test_prometheus_is_the_demos_on_its_port_unless_a_url_names_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = Settings()
    assert s.embedded_prometheus and s.prometheus == "http://127.0.0.1:9090"
    monkeypatch.setenv("TAILOR_PROMETHEUS_PORT", "9191")
    assert Settings().prometheus == "http://127.0.0.1:9191"
    assert Settings().as_env()["TAILOR_PROMETHEUS_PORT"] == "9191"  # the API finds it
    monkeypatch.setenv("TAILOR_PROMETHEUS_URL", "https://prometheus.internal:9090/")
    s = Settings()
    assert not s.embedded_prometheus and s.prometheus == "https://prometheus.internal:9090"
    monkeypatch.setenv("TAILOR_PROMETHEUS_URL", "prometheus:9090")
    error = settings_error()
    assert "TAILOR_PROMETHEUS_URL" in error and "http:// or https:// URL" in error
