"""ProjectXConfig: from_env, from_file (JSON/YAML), validation, for_simulator, and a repr that hides the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pxkit.config import ProjectXConfig
from pxkit.errors import ConfigError

KEY = "SECRET-KEY-123"
CREDS = {"PROJECT_X_USERNAME": "trader", "PROJECT_X_API_KEY": KEY}
DEFAULT = ProjectXConfig()


# ---------------------------------------------------------------------------------------------- from_env


def test_from_env_reads_credentials_and_defaults() -> None:
    config = ProjectXConfig.from_env(CREDS)
    assert (config.username, config.api_key, config.account_name) == ("trader", KEY, None)
    assert config.has_credentials
    assert (config.api_url, config.user_hub_url, config.market_hub_url) == (
        DEFAULT.api_url, DEFAULT.user_hub_url, DEFAULT.market_hub_url)
    assert config.api_url == "https://api.topstepx.com"
    assert (config.general_rate_limit, config.history_rate_limit) == ((200, 60.0), (30, 30.0))


def test_from_env_account_name_and_url_overrides() -> None:
    env = {**CREDS, "PROJECT_X_ACCOUNT_NAME": "PRAC-V2-SIM-150K-2", "PROJECT_X_API_URL": "https://api.example",
           "PROJECT_X_USER_HUB_URL": "https://rtc.example/hubs/user",
           "PROJECT_X_MARKET_HUB_URL": "https://rtc.example/hubs/market", "UNRELATED": "x"}
    config = ProjectXConfig.from_env(env)
    assert config.account_name == "PRAC-V2-SIM-150K-2"
    assert (config.api_url, config.user_hub_url, config.market_hub_url) == (
        "https://api.example", "https://rtc.example/hubs/user", "https://rtc.example/hubs/market")


def test_from_env_keyword_overrides_win_over_the_environment() -> None:
    config = ProjectXConfig.from_env({**CREDS, "PROJECT_X_API_URL": "https://env.example"},
                                     api_url="https://kw.example", timeout=5.0)
    assert (config.api_url, config.timeout) == ("https://kw.example", 5.0)


def test_from_env_empty_values_count_as_unset() -> None:
    config = ProjectXConfig.from_env({**CREDS, "PROJECT_X_API_URL": "", "PROJECT_X_ACCOUNT_NAME": ""})
    assert (config.api_url, config.account_name) == (DEFAULT.api_url, None)


@pytest.mark.parametrize("env", [
    {}, {"PROJECT_X_USERNAME": "trader"}, {"PROJECT_X_API_KEY": KEY},
    {"PROJECT_X_USERNAME": "", "PROJECT_X_API_KEY": ""},
], ids=["none", "no-key", "no-user", "empty"])
def test_from_env_without_credentials_names_the_variables(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        ProjectXConfig.from_env(env)
    assert "PROJECT_X_USERNAME" in str(info.value) and "PROJECT_X_API_KEY" in str(info.value)
    assert KEY not in str(info.value)


def test_from_env_uses_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJECT_X_USERNAME", "osuser")
    monkeypatch.setenv("PROJECT_X_API_KEY", KEY)
    monkeypatch.delenv("PROJECT_X_ACCOUNT_NAME", raising=False)
    assert ProjectXConfig.from_env().username == "osuser"


# ---------------------------------------------------------------------------------------------- from_file

SETTINGS: dict[str, Any] = {"username": "trader", "api_key": KEY, "account_name": "PRAC-V2-SIM-50K-1",
                            "api_url": "https://api.example", "timeout": 12.5, "retry_attempts": 3,
                            "general_rate_limit": [100, 30], "history_rate_limit": [10, 20.0], "verify_orders": True}


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else
                    yaml.safe_dump(data) if name.endswith((".yaml", ".yml")) else json.dumps(data))
    return path


@pytest.mark.parametrize("name", ["px.json", "px.yaml", "px.yml", "PX.YAML"])
def test_from_file_reads_every_setting(tmp_path: Path, name: str) -> None:
    config = ProjectXConfig.from_file(write(tmp_path, name, SETTINGS))
    assert (config.username, config.api_key, config.account_name) == ("trader", KEY, "PRAC-V2-SIM-50K-1")
    assert (config.api_url, config.timeout, config.retry_attempts, config.verify_orders) == (
        "https://api.example", 12.5, 3, True)
    assert config.general_rate_limit == (100, 30) and isinstance(config.general_rate_limit, tuple)
    assert config.history_rate_limit == (10, 20.0) and isinstance(config.history_rate_limit, tuple)
    assert config.user_hub_url == DEFAULT.user_hub_url  # not given: default


def test_from_file_accepts_a_str_path_and_an_empty_mapping(tmp_path: Path) -> None:
    config = ProjectXConfig.from_file(str(write(tmp_path, "empty.json", {})))
    assert config == ProjectXConfig()
    assert not config.has_credentials  # a file need not hold credentials


@pytest.mark.parametrize("name", ["px.json", "px.yaml"])
def test_from_file_unknown_keys_are_listed(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, {"username": "trader", "apiKey": "x", "retries": 3})
    with pytest.raises(ConfigError) as info:
        ProjectXConfig.from_file(path)
    assert "apiKey, retries" in str(info.value)
    assert "username" not in str(info.value)


@pytest.mark.parametrize(("name", "text", "kind"), [
    ("bad.json", '{"username": "trader",', "JSON"),
    ("bad.json", "username: trader", "JSON"),  # YAML in a .json file
    ("bad.yaml", "username: [trader\n", "YAML"),
    ("bad.yml", "a: b: c\n", "YAML"),
])
def test_from_file_bad_syntax(tmp_path: Path, name: str, text: str, kind: str) -> None:
    with pytest.raises(ConfigError, match=f"not valid {kind}"):
        ProjectXConfig.from_file(write(tmp_path, name, text))


@pytest.mark.parametrize(("name", "text"), [
    ("list.json", "[1, 2]"), ("string.json", '"x"'), ("null.json", "null"), ("list.yaml", "- a\n- b\n"),
    ("scalar.yaml", "42\n"), ("empty.yaml", ""),
])
def test_from_file_non_mapping(tmp_path: Path, name: str, text: str) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        ProjectXConfig.from_file(write(tmp_path, name, text))


def test_from_file_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        ProjectXConfig.from_file(tmp_path / "nope.json")


@pytest.mark.parametrize("settings", [
    {"timeout": -1}, {"general_rate_limit": [0, 60]}, {"history_rate_limit": [30, 0]}, {"retry_attempts": 0},
], ids=["negative-timeout", "zero-requests", "zero-seconds", "no-attempts"])
def test_from_file_invalid_values(tmp_path: Path, settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ProjectXConfig.from_file(write(tmp_path, "px.yaml", settings))


@pytest.mark.parametrize("settings", [
    {"general_rate_limit": [200]}, {"history_rate_limit": 30}, {"timeout": "fast"}, {"retry_attempts": None},
    {1: "a", "retries": 3},
], ids=["short-rate-list", "rate-scalar", "timeout-string", "attempts-null", "int-and-str-keys"])
def test_from_file_ill_typed_values_are_config_errors(tmp_path: Path, settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ProjectXConfig.from_file(write(tmp_path, "px.yaml", settings))


# ---------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("changes", [
    {"timeout": -0.1}, {"token_refresh_buffer": -1}, {"retry_base_delay": -1}, {"retry_max_delay": -1},
    {"breaker_reset_timeout": -5}, {"retry_attempts": 0}, {"breaker_failure_threshold": 0},
    {"general_rate_limit": (0, 60)}, {"general_rate_limit": (200, 0)}, {"history_rate_limit": (30, -1.0)},
    {"history_rate_limit": (-1, 30)}, {"max_retry_after": -1}, {"max_retry_after": float("inf")},
    {"max_retry_after": float("nan")}, {"timeout": float("nan")}, {"general_rate_limit": (200, float("nan"))},
])
def test_invalid_values_raise_config_error(changes: dict[str, Any]) -> None:
    name = next(iter(changes))
    with pytest.raises(ConfigError, match=name):
        ProjectXConfig(**changes)
    with pytest.raises(ConfigError, match=name):
        ProjectXConfig().replace(**changes)


@pytest.mark.parametrize("changes", [
    {"timeout": 0}, {"retry_attempts": 1}, {"breaker_failure_threshold": 1}, {"general_rate_limit": (1, 0.001)},
])
def test_boundary_values_are_accepted(changes: dict[str, Any]) -> None:
    assert ProjectXConfig(**changes).replace(username="u") is not None


def test_retry_after_is_capped_at_thirty_seconds_by_default() -> None:
    assert DEFAULT.max_retry_after == 30.0
    assert ProjectXConfig(max_retry_after=0).max_retry_after == 0


def test_require_credentials() -> None:
    with pytest.raises(ConfigError, match="PROJECT_X_API_KEY"):
        ProjectXConfig(username="trader").require_credentials()
    ProjectXConfig(username="trader", api_key=KEY).require_credentials()


# ---------------------------------------------------------------------------------------------- repr and simulator


@pytest.mark.parametrize("config", [
    ProjectXConfig(username="trader", api_key=KEY),
    ProjectXConfig.from_env(CREDS),
    ProjectXConfig.for_simulator("http://127.0.0.1:9", username="trader", api_key=KEY),
    ProjectXConfig(username="trader", api_key=KEY).replace(timeout=3.0),
])
def test_repr_never_shows_the_api_key(config: ProjectXConfig) -> None:
    for text in (repr(config), str(config), f"{config}", f"{config!r}", repr([config]), repr({"c": config})):
        assert KEY not in text
        assert "api_key=***" in text and "username='trader'" in text


def test_repr_without_a_key_says_none() -> None:
    assert "api_key=None" in repr(ProjectXConfig())


@pytest.mark.parametrize("base", ["http://127.0.0.1:8123", "http://127.0.0.1:8123/"])
def test_for_simulator_sets_the_three_urls(base: str) -> None:
    config = ProjectXConfig.for_simulator(base, timeout=4.0)
    assert config.api_url == "http://127.0.0.1:8123"
    assert config.user_hub_url == "http://127.0.0.1:8123/hubs/user"
    assert config.market_hub_url == "http://127.0.0.1:8123/hubs/market"
    assert (config.username, config.api_key, config.timeout) == ("demo", "demo", 4.0)
    assert config.has_credentials
