"""Settings come from the environment and are refused, by name, when out of range."""

from __future__ import annotations

import pytest

from flowhook import defaults
from flowhook.exceptions import ConfigurationError
from flowhook.settings import Settings, unknown_setting_warnings


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


@pytest.mark.parametrize(
    ("name", "value"),
    [("FLOWHOOK_QUEUE", "flowhook\n"), ("FLOWHOOK_SENTINELS", "sentinel:26379\n"), ("FLOWHOOK_SENTINELS", "\n")],
)
def test_a_pattern_setting_must_match_as_a_whole(name: str, value: str) -> None:
    """A last newline (which Python's $ lets through) is refused with the rest."""
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})


def test_the_web_service_listens_on_loopback_unless_told_otherwise() -> None:
    assert Settings.from_env({}).host == "127.0.0.1"
    assert Settings.from_env({"FLOWHOOK_HOST": "0.0.0.0"}).host == "0.0.0.0"


def test_a_misspelled_setting_is_named_with_the_closest_known_one() -> None:
    environ = {
        "FLOWHOOK_BUDEGT": "3",
        "FLOWHOOK_PORT": "9000",
        "FLOWHOOK_NONSENSE_XYZ": "1",
        "FLOWHOOK_BUDGET": "2",
        "FLOWHOOK_TOKENS_ORDER_LOOKUP": "a" * 16,  # a handler's tokens: known by its prefix
        "FLOWHOOK_PUBLISH": "127.0.0.1:8000",  # read by docker-compose.yml
        "PATH": "/usr/bin",
    }
    assert unknown_setting_warnings(environ) == [
        "FLOWHOOK_BUDEGT is not a Flowhook setting and is ignored; did you mean FLOWHOOK_BUDGET?",
        "FLOWHOOK_NONSENSE_XYZ is not a Flowhook setting and is ignored",
        "FLOWHOOK_PORT is not a Flowhook setting and is ignored; did you mean PORT?",
    ]


def test_every_documented_setting_is_known() -> None:
    from tests.test_deployment import env_example

    flowhook_names = {name: "x" for name in env_example() if name.startswith("FLOWHOOK_")}
    assert unknown_setting_warnings(flowhook_names) == []
