"""ProjectXConfig: gateway URLs, credentials and the resilience knobs, from code, the environment or a file."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

ENV_API_KEY = "PROJECT_X_API_KEY"
ENV_USERNAME = "PROJECT_X_USERNAME"
ENV_ACCOUNT_NAME = "PROJECT_X_ACCOUNT_NAME"
ENV_URLS = {"api_url": "PROJECT_X_API_URL", "user_hub_url": "PROJECT_X_USER_HUB_URL",
            "market_hub_url": "PROJECT_X_MARKET_HUB_URL"}


def _is_number(value: Any) -> bool:
    """An int or float that is not a bool and not NaN."""
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


@dataclass(frozen=True, slots=True)
class ProjectXConfig:
    """Everything the client needs; the defaults point at TopstepX and follow the gateway's published limits."""

    username: str | None = None
    api_key: str | None = None
    account_name: str | None = None
    api_url: str = "https://api.topstepx.com"
    user_hub_url: str = "https://rtc.topstepx.com/hubs/user"
    market_hub_url: str = "https://rtc.topstepx.com/hubs/market"
    timeout: float = 30.0  # seconds per HTTP request
    token_refresh_buffer: float = 7200.0  # refresh this many seconds before the token expires
    general_rate_limit: tuple[int, float] = (200, 60.0)  # requests per seconds, all endpoints but bars
    history_rate_limit: tuple[int, float] = (30, 30.0)  # History/retrieveBars
    retry_attempts: int = 5  # attempts per call for transient errors (1 = no retry)
    retry_base_delay: float = 0.5  # seconds; doubles per attempt, with jitter
    retry_max_delay: float = 30.0
    max_retry_after: float = 30.0  # seconds; a longer (or infinite) Retry-After from the server waits only this long
    breaker_failure_threshold: int = 5  # consecutive transient failures that open the circuit
    breaker_reset_timeout: float = 60.0  # seconds the circuit stays open before one trial call
    verify_orders: bool = False  # look a placed order up before place_order returns

    def __post_init__(self) -> None:
        for name in ("username", "api_key", "account_name", "api_url", "user_hub_url", "market_hub_url"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name} must be a string")
        for name in ("timeout", "token_refresh_buffer", "retry_base_delay", "retry_max_delay", "max_retry_after",
                     "breaker_reset_timeout"):
            if not _is_number(getattr(self, name)) or getattr(self, name) < 0:
                raise ConfigError(f"{name} must be a number >= 0")
        if not math.isfinite(self.max_retry_after):
            raise ConfigError("max_retry_after must be a finite number of seconds")
        for name in ("retry_attempts", "breaker_failure_threshold"):
            value = getattr(self, name)
            if not _is_number(value) or not float(value).is_integer() or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1")
        for name in ("general_rate_limit", "history_rate_limit"):
            value = getattr(self, name)
            if (not isinstance(value, tuple) or len(value) != 2 or not all(_is_number(v) for v in value)
                    or value[0] < 1 or value[1] <= 0):
                raise ConfigError(f"{name} must be a pair (requests >= 1, seconds > 0)")
        if not isinstance(self.verify_orders, bool):
            raise ConfigError("verify_orders must be true or false")

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={'***' if f.name == 'api_key' and self.api_key else repr(getattr(self, f.name))}"
            for f in dataclasses.fields(self)
        )
        return f"ProjectXConfig({shown})"

    @property
    def has_credentials(self) -> bool:
        return bool(self.username and self.api_key)

    def require_credentials(self) -> None:
        """Raise ConfigError unless a username and an API key are set."""
        if not self.has_credentials:
            raise ConfigError(f"a username and an API key are needed (set {ENV_USERNAME} and {ENV_API_KEY})")

    def replace(self, **changes: Any) -> ProjectXConfig:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ constructors

    @staticmethod
    def credentials_in_env(environ: Mapping[str, str] | None = None) -> bool:
        """Whether the environment names a user or an API key (then it must name both: see from_env)."""
        env = os.environ if environ is None else environ
        return bool(env.get(ENV_USERNAME) or env.get(ENV_API_KEY))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ProjectXConfig:
        """Credentials and URL overrides from PROJECT_X_* variables; raises ConfigError without credentials."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "username": env.get(ENV_USERNAME) or None,
            "api_key": env.get(ENV_API_KEY) or None,
            "account_name": env.get(ENV_ACCOUNT_NAME) or None,
        }
        values.update({field: env[var] for field, var in ENV_URLS.items() if env.get(var)})
        config = cls(**{**values, **overrides})
        config.require_credentials()
        return config

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ProjectXConfig:
        """Read a JSON or YAML file of snake_case keys; unknown keys are an error, not silently ignored."""
        import yaml  # only for config files: not on the path of `import pxkit`

        file = Path(path)
        try:
            text = file.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from exc
        is_yaml = file.suffix.lower() in (".yaml", ".yml")
        try:
            data = yaml.safe_load(text) if is_yaml else json.loads(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"config file {file} is not valid {'YAML' if is_yaml else 'JSON'}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config file {file} must hold a mapping of settings")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(key) for key in set(data) - known)
        if unknown:
            raise ConfigError(f"unknown settings in {file}: {', '.join(unknown)}")
        for name in ("general_rate_limit", "history_rate_limit"):
            if isinstance(data.get(name), list):
                data[name] = tuple(data[name])
        return cls(**data)

    @classmethod
    def for_simulator(cls, base_url: str, username: str = "demo", api_key: str = "demo",
                      **overrides: Any) -> ProjectXConfig:
        """A config pointing at a simulated gateway (REST and both hubs on one base URL)."""
        base = base_url.rstrip("/")
        return cls(username=username, api_key=api_key, api_url=base, user_hub_url=f"{base}/hubs/user",
                   market_hub_url=f"{base}/hubs/market", **overrides)
