"""crmhub.yml: one file for the warehouse, the sources, the reports and SMTP.

Loading only parses and validates the structure; ``${VAR}`` references are resolved
when a value is used (a connector is built, the warehouse is opened), so Airflow can
parse DAGs from the file without any secret present. Every error names the file,
the line and the key; no error message ever contains a secret's value.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from sqlalchemy.engine import make_url

from crm_model.identity_settings import IdentitySettings
from crmhub import redact
from crmhub.errors import ConfigError

DEFAULT_PATH = "crmhub.yml"
ENV_VAR = "CRMHUB_CONFIG"
SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
PRESETS = {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@continuous"}
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarehouseSettings(Strict):
    url: str = "sqlite:///var/crmhub.db"


class SourceSettings(Strict):
    connector: str
    schedule: str | None = None
    start_date: dt.date | None = None
    enabled: bool = True
    retries: int = Field(2, ge=0, le=20)
    # `crmhub status` exits 1 when the source has not succeeded for longer than this
    freshness: str | None = Field(None, pattern=r"^\d+[mhd]$")
    max_pages: int = Field(50_000, ge=1, description="Pages one stream may read in one run.")
    execution_timeout_minutes: int = Field(360, ge=1, description="Airflow stops a sync task after this long.")
    config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None or value in PRESETS or len(value.split()) == 5:
            return value
        raise ValueError(f"{value!r} is neither a 5-field cron expression nor one of {sorted(PRESETS)}")


class ReportSettings(Strict):
    report: str
    schedule: str | None = None
    # 7d / 30d (the N full days up to today), month / quarter (the last full one) or FROM..TO
    period: str = Field("7d", pattern=r"^(\d+d|month|quarter|\d{4}-\d\d-\d\d\.\.\d{4}-\d\d-\d\d)$")
    recipients: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)


class SmtpSettings(Strict):
    host: str = "localhost"
    port: int = 25
    sender: str = "crmhub@localhost"
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: SecretStr | None = None
    timeout: float = 30.0
    ca_file: str | None = None  # extra CA bundle for a private mail server; verification stays on


class DashboardSettings(Strict):
    """``crmhub serve``'s live report pages: a bearer token and/or HTTP basic auth."""

    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None


class AlertSettings(Strict):
    """Where a failed sync or report run is announced (operations)."""

    email: list[str] = Field(default_factory=list)  # sent through the smtp: settings
    webhook_url: str | None = None  # e.g. a Slack incoming webhook; ${VAR} recommended (it is a secret)
    airflow_url: str | None = None  # base URL of the Airflow UI, for links in CLI alerts
    timeout: float = Field(10.0, gt=0, le=120)


class AffiliateSite(Strict):
    """How to recognise one affiliate site (crm_model/affiliates.py, docs/attribution.md)."""

    utm_sources: list[str] = Field(default_factory=list)
    referrer_domains: list[str] = Field(default_factory=list)
    param_values: list[str] = Field(default_factory=list)  # values of any of affiliates.url_params


class AffiliateSettings(Strict):
    url_params: list[str] = Field(default_factory=list)  # e.g. [aff_id]: ?aff_id=4711 on a landing page
    sites: dict[str, AffiliateSite] = Field(default_factory=dict)


class Settings(Strict):
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    reports: dict[str, ReportSettings] = Field(default_factory=dict)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    affiliates: AffiliateSettings = Field(default_factory=AffiliateSettings)

    @field_validator("sources", "reports")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not SOURCE_NAME.match(name):
                raise ValueError(f"name {name!r} must be lower-case letters, digits and _ (it is used in DAG ids)")
        return value


# ----------------------------------------------------------------------- secrets

SecretLookup = Callable[[str], str | None]
_lookups: list[SecretLookup] = [os.environ.get]


def add_secret_lookup(lookup: SecretLookup) -> None:
    """Consult ``lookup`` after the environment (Airflow variables/connections do this)."""
    if lookup not in _lookups:
        _lookups.append(lookup)


def _secret(name: str) -> str | None:
    for lookup in _lookups:
        value = lookup(name)
        if value is not None:
            return value
    return None


def _not_found(name: str) -> str:
    """Where ``name`` was looked for, so the reader knows where to set it."""
    places = [getattr(lookup, "describe", None) for lookup in _lookups[1:]]
    places = [describe(name) for describe in places if describe]
    if not places:
        return f"environment variable {name} is not set"
    return f"{name} is not set (looked up as: environment variable {name}, {', '.join(places)})"


def interpolate(value: Any, loc: tuple = (), where: Callable[..., str] | None = None) -> Any:
    """Replace ``${VAR}`` (or ``${VAR:-default}``) in every string of a value.

    ``where(*loc)`` describes a key's place for the error about a missing variable.
    """
    if isinstance(value, str):
        def sub(match: re.Match) -> str:
            found = _secret(match.group(1))
            if found is None:
                if match.group(2) is not None:
                    return match.group(2)
                place = where(*loc) if where else ".".join(map(str, loc)) or "config"
                raise ConfigError(f"{place}: {_not_found(match.group(1))}")
            return found

        return VAR.sub(sub, value)
    if isinstance(value, Mapping):
        return {k: interpolate(v, (*loc, k), where) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, (*loc, i), where) for i, v in enumerate(value)]
    return value


# ----------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Config:
    """A loaded crmhub.yml: the validated settings plus where each key sits in the file."""

    settings: Settings
    path: Path
    lines: Mapping[tuple, int]

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def where(self, *loc: Any) -> str:
        """'crmhub.yml line 12: sources.web.config.token' for a key path."""
        line = None
        for n in range(len(loc), 0, -1):
            line = self.lines.get(tuple(loc[:n]))
            if line is not None:
                break
        dotted = ".".join(str(p) for p in loc)
        return f"{self.path.name} line {line}: {dotted}" if line else f"{self.path.name}: {dotted}"

    def warehouse_url(self) -> str:
        url = interpolate(self.settings.warehouse.url, ("warehouse", "url"), self.where)
        try:
            parsed = make_url(url)
        except Exception:
            raise ConfigError(f"{self.where('warehouse', 'url')}: not a database URL") from None
        db = parsed.database
        if parsed.password:
            redact.register(str(parsed.password))
        if parsed.get_backend_name() == "sqlite" and db and db != ":memory:" and not os.path.isabs(db):
            parsed = parsed.set(database=str(self.base_dir / db))
        return parsed.render_as_string(hide_password=False)

    def source(self, name: str) -> SourceSettings:
        try:
            return self.settings.sources[name]
        except KeyError:
            known = ", ".join(self.settings.sources) or "none configured"
            raise ConfigError(f"unknown source {name!r} in {self.path.name} (sources: {known})") from None

    def source_config(self, name: str, model: type[BaseModel]) -> BaseModel:
        """The source's ``config:`` block, interpolated and validated by ``model``.

        Its secrets are registered for redaction as it validates (``ConnectorConfig``).
        """
        raw = interpolate(self.source(name).config, ("sources", name, "config"), self.where)
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(self._describe(exc, ("sources", name, "config"))) from None

    def _describe(self, exc: ValidationError, prefix: tuple = ()) -> str:
        problems = []
        for err in exc.errors():
            loc = prefix + tuple(err["loc"])
            msg = "unknown key (not allowed here)" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{self.where(*loc)}: {msg}")  # never the input: it may be a secret
        return "; ".join(problems)


def duration(text: str) -> dt.timedelta:
    """'90m', '6h', '2d' as a timedelta."""
    unit = {"m": "minutes", "h": "hours", "d": "days"}[text[-1]]
    return dt.timedelta(**{unit: int(text[:-1])})


def config_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load(path: str | os.PathLike | None = None) -> Config:
    p = config_path(path).resolve()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {p} not found (set {ENV_VAR} or pass --config)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    return loads(text, p)


def loads(text: str, path: Path = Path(DEFAULT_PATH)) -> Config:
    data, lines = _parse(text, path.name)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: the top level must be a mapping (warehouse:, sources:, ...)")
    partial = Config(Settings.model_construct(), path, lines)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(partial._describe(exc)) from None
    return Config(settings, path, lines)


def _parse(text: str, name: str) -> tuple[Any, dict[tuple, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{name}{where}: invalid YAML: {problem}") from None
    lines: dict[tuple, int] = {}
    if node is None:
        return None, lines
    return _build(node, (), lines, name), lines


def _build(node: yaml.Node, loc: tuple, lines: dict[tuple, int], name: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _build(key_node, loc, lines, name)
            if key in out:
                raise ConfigError(f"{name} line {key_node.start_mark.line + 1}: key {key!r} appears twice")
            lines[loc + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, loc + (key,), lines, name)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, loc + (i,), lines, name) for i, child in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
