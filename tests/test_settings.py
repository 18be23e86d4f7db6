"""Settings come from the environment; a bad value is named at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from settings import ENV_NAMES, Settings, SettingsError, load

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_defaults_need_no_environment() -> None:
    settings = load({})
    assert settings == Settings()
    assert settings.database_url is None and settings.redis_url is None
    assert settings.ai_timeout_s == 30.0


def test_values_are_read_and_typed() -> None:
    settings = load(
        {
            "BATON_AI_TIMEOUT_S": "12.5",
            "BATON_REMIND_AFTER_S": "60",
            "BATON_ALLOWED_ORIGINS": "https://a.example, https://b.example",
            "BATON_LOG_FORMAT": "JSON",
        }
    )
    assert settings.ai_timeout_s == 12.5
    assert settings.remind_after_s == 60
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("BATON_AI_TIMEOUT_S", "soon", "is not a number"),
        ("BATON_REMIND_AFTER_S", "-5", "greater than 0"),
        ("BATON_WORKER_HEARTBEAT_TIMEOUT_MS", "1.5", "whole number"),
        ("BATON_LOG_FORMAT", "xml", "one of text, json"),
        ("DATABASE_URL", "mysql://x", "postgresql://"),
        ("REDIS_URL", "http://x", "redis://"),
        ("SMTP_URL", "mail.example:25", "smtp://"),
        ("BATON_PUBLIC_URL", "baton.example.com", "http(s) address"),
        ("BATON_PUBLIC_URL", "https://baton.example.com/?x=1", "no query"),
        ("BATON_PUBLIC_URL", "https://bäton.example.com", "ASCII"),
        ("BATON_PUBLIC_URL", "https://user:pw@baton.example.com", "http(s) address"),
    ],
)
def test_a_bad_value_is_refused_with_the_variable_named(variable: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load({variable: value})
    assert variable in str(refused.value)
    assert words in str(refused.value)


def test_baton_stops_at_start_on_a_bad_value_and_names_it() -> None:
    env = {**os.environ, "BATON_AI_TIMEOUT_S": "soon"}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "migrate"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "BATON_AI_TIMEOUT_S='soon' is not a number" in done.stderr


def test_the_readme_lists_every_variable_with_its_default() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for variable in ENV_NAMES.values():
        assert f"`{variable}`" in readme, f"{variable} is missing from the README's table"


@pytest.mark.parametrize(
    "secret",
    ["x", "short-but-random-9f3a", "change-me-to-64-random-characters", "a" * 64],
)
def test_a_weak_or_placeholder_jwt_secret_is_refused(secret: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load({"BATON_JWT_SECRET": secret})
    assert "BATON_JWT_SECRET" in str(refused.value)


def test_outbound_networks_are_read_and_a_bad_one_is_named() -> None:
    settings = load({"BATON_OUTBOUND_ALLOW_CIDRS": "10.20.0.0/16, 192.168.1.5"})
    assert settings.outbound_allow_cidrs == ("10.20.0.0/16", "192.168.1.5/32")
    with pytest.raises(SettingsError) as refused:
        load({"BATON_OUTBOUND_ALLOW_CIDRS": "10.0.0.0/33"})
    assert "BATON_OUTBOUND_ALLOW_CIDRS" in str(refused.value)
