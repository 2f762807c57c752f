"""Google credentials for connectors that call Google APIs (an access token or a key file)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import google.oauth2.credentials
from google.auth.exceptions import GoogleAuthError
from google.oauth2 import service_account
from pydantic import SecretStr

from crmhub.errors import ConfigError


def google_credentials(who: str, *, access_token: SecretStr | None, credentials_file: str | None,
                       subject: str | None, scopes: Sequence[str], base_dir: Path) -> Any:
    """Credentials from a bare access token (never refreshed) or a service-account /
    authorized-user JSON file (relative to crmhub.yml's folder). Errors name the file and
    the missing field, never the key material."""
    if access_token is not None:
        return google.oauth2.credentials.Credentials(token=access_token.get_secret_value())
    path = Path(credentials_file or "").expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{who}: cannot read credentials_file {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"{who}: credentials_file {path} is not a JSON key file") from None
    kind = info.get("type") if isinstance(info, dict) else None
    try:
        if kind == "service_account":
            return service_account.Credentials.from_service_account_info(info, scopes=list(scopes), subject=subject)
        if kind == "authorized_user":
            if subject:
                raise ConfigError(f"{who}: subject works with a service-account key only")
            return google.oauth2.credentials.Credentials.from_authorized_user_info(info)
    except (ValueError, GoogleAuthError) as exc:
        reason = str(exc).splitlines()[0][:200] if "PRIVATE KEY" not in str(exc) else "malformed key"
        raise ConfigError(f"{who}: credentials_file {path} is incomplete: {reason}") from None
    raise ConfigError(f"{who}: credentials_file {path} has type {kind!r}; "
                      "expected a service_account or authorized_user JSON file")
