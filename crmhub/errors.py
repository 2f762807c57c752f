"""Errors a user sees as one clear line (the CLI prints them without a traceback)."""


class CrmhubError(Exception):
    """Base for every error that is the user's to fix or that explains a failed run."""


class ConfigError(CrmhubError):
    """crmhub.yml is missing, malformed, or names something that does not exist."""


class WarehouseError(CrmhubError):
    """The warehouse is unreachable, uninitialised or at the wrong schema version."""


class SourceError(CrmhubError):
    """A source system refused or failed a request in a way retrying will not fix."""
