"""What only the user may decide: where completions may be sent and which key goes with them.

Editor settings (initializationOptions, didChangeConfiguration) can come from a project the
user merely opened, so they may *select* the ``remote`` engine but never choose its
destination or its credential. Those come from the user's own configuration:

- ``$XDG_CONFIG_HOME/sparkls/config.toml`` (default ``~/.config/sparkls/config.toml``)::

      allowed_key_envs = ["CEREBRAS_API_KEY"]   # variables a remote engine may read a key from

      [remote]
      url = "https://api.cerebras.ai/v1"
      model = "llama3.1-8b"
      api_key_env = "CEREBRAS_API_KEY"

- or the environment, which wins: ``SPARKLS_REMOTE_URL``, ``SPARKLS_REMOTE_MODEL``,
  ``SPARKLS_REMOTE_API_KEY_ENV``, ``SPARKLS_ALLOWED_KEY_ENVS`` (comma-separated).

A URL must be https unless its host is a loopback address, and ``api_key_env`` must be one
of the allow-listed names.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sparkls.plugins.api import SpecError, config_dir, read_toml

log = logging.getLogger("sparkls")

# Remote fields only the user's configuration may set (destination and credential).
USER_ONLY = ("url", "api_key_env")
MAX_CONFIG_BYTES = 1 << 20


class UserConfigError(ValueError):
    """The user's configuration (or a setting) asks for something it may not."""


@dataclass
class UserConfig:
    remote: dict[str, Any] = field(default_factory=dict)
    allowed_key_envs: frozenset[str] = frozenset()
    source: str = "no user configuration"


def config_path() -> Path:
    return config_dir() / "config.toml"


def load() -> UserConfig:
    """The user's configuration: the config file, overridden by the environment."""
    cfg = UserConfig()
    path = config_path()
    try:
        if path.is_file() and path.stat().st_size <= MAX_CONFIG_BYTES:
            table = read_toml(path)
            remote = table.get("remote") or {}
            if not isinstance(remote, dict):
                raise UserConfigError(f"{path}: [remote] must be a table")
            cfg.remote = dict(remote)
            allowed = table.get("allowed_key_envs", [])
            if not (isinstance(allowed, list) and all(isinstance(a, str) for a in allowed)):
                raise UserConfigError(f"{path}: allowed_key_envs must be a list of variable names")
            cfg.allowed_key_envs = frozenset(allowed)
            cfg.source = str(path)
    except (OSError, SpecError, UserConfigError) as exc:
        log.error("user configuration not read: %s", exc)
    env = os.environ
    for name, key in (("SPARKLS_REMOTE_URL", "url"), ("SPARKLS_REMOTE_MODEL", "model"),
                      ("SPARKLS_REMOTE_API_KEY_ENV", "api_key_env")):
        if env.get(name):
            cfg.remote[key] = env[name]
            cfg.source = "the environment" if cfg.source == "no user configuration" else cfg.source + " and the environment"
    if env.get("SPARKLS_ALLOWED_KEY_ENVS"):
        cfg.allowed_key_envs |= {n.strip() for n in env["SPARKLS_ALLOWED_KEY_ENVS"].split(",") if n.strip()}
    return cfg


def is_loopback_host(host: str | None) -> bool:
    import ipaddress

    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> None:
    """https, or http to this machine only (a plain-http code stream could be read on the way)."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname)):
        return
    from sparkls.decode.remote.remote_client import redact_url

    raise UserConfigError(f"remote url {redact_url(url)} must be https (plain http only to a loopback address)")


def remote_settings(from_settings: dict[str, Any] | None, user: UserConfig | None = None) -> dict[str, Any]:
    """The ``remote`` table for the engine: the user's, with the editor's non-destination fields over it.

    Raises :class:`UserConfigError` when no user configuration names a URL, the URL is not
    allowed, or ``api_key_env`` is not allow-listed.
    """
    user = user or load()
    merged = {**{k: v for k, v in (from_settings or {}).items() if k not in USER_ONLY}, **user.remote}
    if "url" not in merged:
        raise UserConfigError(
            f"the remote engine needs a url in {config_path()} ([remote] url) or $SPARKLS_REMOTE_URL; "
            "editor settings cannot set it"
        )
    check_url(str(merged["url"]))
    key_env = merged.get("api_key_env") or ""
    if key_env and key_env not in user.allowed_key_envs:
        raise UserConfigError(
            f"remote api_key_env {key_env!r} is not allow-listed: add it to allowed_key_envs in {config_path()} "
            "or $SPARKLS_ALLOWED_KEY_ENVS"
        )
    return merged
