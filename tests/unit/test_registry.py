"""Connector registration through entry points."""

from __future__ import annotations

from connectors.sdk import registry
from crmhub import dag_factory


def test_every_registered_connector_loads_and_declares_streams():
    for name in registry.available():
        cls = registry.load(name)
        assert cls.Config is not None
        assert cls.push or cls.declared_streams(), name


def test_push_group_matches_the_classes():
    assert dag_factory.PUSH_GROUP == registry.PUSH_GROUP
    assert registry.push_types() == {n for n in registry.available() if registry.load(n).push}
