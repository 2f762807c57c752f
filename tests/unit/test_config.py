"""crmhub.yml: validation with file lines, ${VAR} interpolation, secrets never echoed."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, field_validator

from connectors.sdk import ConnectorConfig
from crmhub import config
from crmhub.errors import ConfigError

GOOD = """\
warehouse:
  url: postgresql+psycopg://crm:${PGPASS}@db/crm
sources:
  web_leads:
    connector: typeform
    schedule: "*/15 * * * *"
    start_date: 2026-01-01
    config:
      token: ${TYPEFORM_TOKEN}
      region: ${REGION:-eu}
reports:
  weekly:
    report: marketing
    schedule: "0 7 * * 1"
    recipients: [cmo@example.com]
smtp: {host: localhost, port: 25, sender: reports@example.com}
"""


class TokenConfig(ConnectorConfig):
    token: SecretStr
    region: str

    @field_validator("token")
    @classmethod
    def _prefix(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("tf_"):
            raise ValueError(f"tokens start with tf_, not {value.get_secret_value()[:3]}...")
        return value


def test_interpolation_is_lazy_and_resolves_defaults(monkeypatch):
    cfg = config.loads(GOOD)  # loads with no variables set: nothing is resolved yet
    assert cfg.settings.sources["web_leads"].schedule == "*/15 * * * *"
    monkeypatch.setenv("TYPEFORM_TOKEN", "tf_abc")
    conf = cfg.source_config("web_leads", TokenConfig)
    assert conf.token.get_secret_value() == "tf_abc" and conf.region == "eu"
    monkeypatch.setenv("PGPASS", "p@ss")
    assert cfg.warehouse_url() == "postgresql+psycopg://crm:p@ss@db/crm"


def test_missing_variable_names_the_variable_and_the_line(monkeypatch):
    monkeypatch.delenv("TYPEFORM_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"crmhub.yml line 9: sources.web_leads.config.token: environment "
                                          r"variable TYPEFORM_TOKEN is not set"):
        config.loads(GOOD).source_config("web_leads", TokenConfig)


def test_invalid_secret_is_never_echoed(monkeypatch):
    monkeypatch.setenv("TYPEFORM_TOKEN", "wrong-but-secret-value")
    with pytest.raises(ConfigError) as err:
        config.loads(GOOD).source_config("web_leads", TokenConfig)
    assert "line 9: sources.web_leads.config.token" in str(err.value)
    assert "wrong-but-secret-value" not in str(err.value)


def test_unknown_keys_are_rejected_with_their_line():
    with pytest.raises(ConfigError, match=r"crmhub.yml line 6: sources.web_leads.schedul: unknown key"):
        config.loads(GOOD.replace("    schedule:", "    schedul:"))
    with pytest.raises(ConfigError, match=r"line 2: warehouse.uri: unknown key"):
        config.loads(GOOD.replace("  url:", "  uri:"))


def test_structural_errors():
    with pytest.raises(ConfigError, match=r"line 3: key 'a' appears twice"):
        config.loads("sources:\n  a: {connector: csv}\n  a: {connector: csv}\n")
    with pytest.raises(ConfigError, match=r"line \d+: invalid YAML"):
        config.loads("sources:\n  a: [unclosed\n")
    with pytest.raises(ConfigError, match="must be lower-case"):
        config.loads("sources:\n  Web-Leads: {connector: csv}\n")
    with pytest.raises(ConfigError, match="neither a 5-field cron"):
        config.loads("sources:\n  a: {connector: csv, schedule: every minute}\n")
    with pytest.raises(ConfigError, match="unknown source 'nope'"):
        config.loads(GOOD).source("nope")


def test_relative_sqlite_path_starts_at_the_config_file(tmp_path):
    path = tmp_path / "crmhub.yml"
    path.write_text("warehouse: {url: 'sqlite:///var/crm.db'}\n")
    assert config.load(path).warehouse_url() == f"sqlite:///{tmp_path}/var/crm.db"


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.yml")
