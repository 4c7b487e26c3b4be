"""Settings come from the environment and are refused, by name, when out of range."""

from __future__ import annotations

import pytest

from flowhook import defaults
from flowhook.exceptions import ConfigurationError
from flowhook.settings import Settings


def test_defaults_apply_when_nothing_is_set() -> None:
    settings = Settings.from_env({})
    assert settings.budget == defaults.BUDGET == 5
    assert settings.port == 8000
    assert settings.handlers_package == "handlers"


def test_values_are_read_by_their_environment_names() -> None:
    settings = Settings.from_env({"REDIS_URL": "redis://cache:6379/2", "FLOWHOOK_BUDGET": "2.5", "PORT": "9000"})
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.budget == 2.5
    assert settings.port == 9000


@pytest.mark.parametrize("budget", ["16", "20", "0", "-1", "soon"])
def test_a_budget_near_loyjoys_timeout_or_nonsense_is_refused(budget: str) -> None:
    with pytest.raises(ConfigurationError, match="FLOWHOOK_BUDGET"):
        Settings.from_env({"FLOWHOOK_BUDGET": budget})


def test_the_budget_cap_itself_is_allowed() -> None:
    assert Settings.from_env({"FLOWHOOK_BUDGET": "15"}).budget == 15


def test_every_bad_setting_is_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"PORT": "http", "FLOWHOOK_JOB_TIMEOUT": "0"})
    assert "PORT" in str(caught.value)
    assert "FLOWHOOK_JOB_TIMEOUT" in str(caught.value)
