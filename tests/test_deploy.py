"""The deployment files, checked by construction (no Docker engine here): compose, Caddy, .env.example."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {name.upper() for name in Settings.model_fields}
COMPOSE_ONLY = {"COMPOSE_PROFILES", "WEBHOOK_DOMAIN"}  # read by docker compose, not by the bot


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_bot_services_set_only_known_settings() -> None:
    """Every variable compose gives a bot container is a setting the bot reads."""
    for name in ("bot", "bot-webhook"):
        assert set(compose()["services"][name]["environment"]) <= SETTINGS


def test_profiles_separate_polling_from_replicas() -> None:
    """The polling bot and the webhook replicas never run together (Telegram refuses both at once)."""
    services = compose()["services"]
    assert services["bot"]["profiles"] == ["polling"]
    assert services["bot-webhook"]["profiles"] == services["proxy"]["profiles"] == ["replicas"]
    assert services["bot-webhook"]["environment"]["TELEGRAM_MODE"] == "webhook"
    assert "profiles" not in services["redis"]


def test_healthcheck_probes_readiness_where_the_bot_listens() -> None:
    """The bots' healthcheck asks /readyz on the port their listen settings name."""
    services = compose()["services"]
    for name, listen in (("bot", "HEALTH_LISTEN"), ("bot-webhook", "WEBHOOK_LISTEN")):
        port = services[name]["environment"][listen].rpartition(":")[2]
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/readyz" in probe


def test_shutdown_grace_fits_compose_stop_period() -> None:
    """Compose waits longer than the bot's longest grace period before it kills a replica."""
    period = compose()["services"]["bot"]["stop_grace_period"]
    assert int(period.rstrip("s")) > Settings.model_fields["shutdown_grace_seconds"].metadata[1].le


def test_caddy_proxies_to_the_replicas_port() -> None:
    """Caddy balances over every bot-webhook replica on the port they listen on."""
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    port = compose()["services"]["bot-webhook"]["environment"]["WEBHOOK_LISTEN"].rpartition(":")[2]
    assert f"dynamic a bot-webhook {port}" in caddyfile


def test_env_example_names_only_real_settings() -> None:
    """Every variable in .env.example, set or commented out, is a setting or a compose variable."""
    names = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert names <= SETTINGS | COMPOSE_ONLY
    assert {"TELEGRAM_BOT_TOKEN", "YUANQI_TOKEN", "YUANQI_ASSISTANT_ID", "WEBHOOK_SECRET"} <= names
