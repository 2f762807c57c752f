"""Connector registration through entry points."""

from __future__ import annotations

from connectors.sdk import registry
from crm_model import mapping
from crmhub import dag_factory


def test_every_registered_connector_loads_and_declares_streams():
    for name in registry.available():
        cls = registry.load(name)
        assert cls.Config is not None
        assert cls.push or cls.declared_streams(), name


def test_push_group_matches_the_classes():
    assert dag_factory.PUSH_GROUP == registry.PUSH_GROUP
    assert registry.push_types() == {n for n in registry.available() if registry.load(n).push}


def _install(folder, monkeypatch, entry_point: str, group: str = "crmhub.connectors") -> None:
    """A distribution acme-crm installed in ``folder`` with one crmhub entry point."""
    dist = folder / "acme_crm-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-crm\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\n{entry_point}\n")
    monkeypatch.syspath_prepend(str(folder))
    registry.available.cache_clear()


def test_a_third_party_package_adds_a_connector(tmp_path, monkeypatch):
    """An installed distribution's entry point is all it takes (no change to crmhub)."""
    package = tmp_path / "acme_crm"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from connectors.sdk import Connector, ConnectorConfig, stream\n"
        "class AcmeConfig(ConnectorConfig):\n    region: str = 'eu'\n"
        "class AcmeConnector(Connector):\n    Config = AcmeConfig\n"
        "    @stream(primary_key='id')\n    def contacts(self, state):\n        yield [{'id': 1}]\n")
    _install(tmp_path, monkeypatch, "acme = acme_crm:AcmeConnector")
    try:
        assert "acme" in registry.available()
        cls = registry.load("acme")
        assert list(cls.declared_streams()) == ["contacts"]
    finally:
        registry.available.cache_clear()


def test_crmhub_own_types_load_from_its_own_metadata_and_win_over_a_namesake(tmp_path, monkeypatch):
    """A built-in type loads without reading every installed distribution's entry points
    (hundreds of folders beside Airflow), and a package registering the same name does
    not replace it."""
    _install(tmp_path, monkeypatch, "csv = acme_crm:Csv")
    scans = []
    real = registry.entry_points
    monkeypatch.setattr(registry, "entry_points", lambda **kw: scans.append(kw) or real(**kw))
    try:
        from connectors.csv import CsvConnector

        assert registry.load("csv") is CsvConnector and scans == []
    finally:
        registry.available.cache_clear()


def test_a_third_party_package_adds_a_mapping_read_once(tmp_path, monkeypatch):
    """``crmhub.mappings`` names a module to import for a connector type; the group is read
    once per process, not once per connector type a model run meets."""
    (tmp_path / "acme_maps.py").write_text(
        "from crm_model.mapping import Row, mapping\n"
        "@mapping('acme', 'contacts')\n"
        "def contacts(raw, ctx):\n    return [Row('source_person', {'external_id': raw['id']})]\n")
    _install(tmp_path, monkeypatch, "acme = acme_maps", group="crmhub.mappings")
    scans = []
    real = mapping.entry_points
    monkeypatch.setattr(mapping, "entry_points", lambda **kw: scans.append(kw) or real(**kw))
    mapping._third_party.cache_clear()
    try:
        mapper = mapping.find_mapping("acme", "contacts")
        assert mapper is not None and mapper.fn({"id": "7"}, None)[0].values == {"external_id": "7"}
        assert mapping.find_mapping("no_such_type", "contacts") is None
        assert scans == [{"group": "crmhub.mappings"}]
    finally:
        mapping._third_party.cache_clear()
        for key in [k for k in mapping._REGISTRY if k[0] == "acme"]:
            del mapping._REGISTRY[key]
