"""How the `crmhub` command talks about itself: usage errors and help placeholders.

typer ships its own copy of click, so its exceptions are matched through
``typer.TyperException`` (what they all derive from), never through ``click``.
"""

from __future__ import annotations

import difflib
from typing import Any


def describe_usage_error(exc: Any) -> str:
    """One line: what was wrong, the closest valid spelling, where help is."""
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "crmhub"
    message = getattr(exc, "message", None) or str(exc)
    hint = ""
    possibilities = getattr(exc, "possibilities", None)
    option = getattr(exc, "option_name", None)
    if option is not None:
        message = f"no such option {option}"
        if possibilities:
            hint = f" (did you mean {' or '.join(sorted(possibilities))}?)"
    elif message.startswith("No such command") and ctx is not None:
        name = message.split("'")[1] if message.count("'") >= 2 else ""
        message = f"no such command {name!r}"
        commands = ctx.command.list_commands(ctx) if hasattr(ctx.command, "list_commands") else []
        close = difflib.get_close_matches(name, commands, n=1)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    else:
        message = message[:1].lower() + message[1:]
    line = " ".join(f"{message}{hint}".split())  # one line, whatever the parser wrote
    return f"crmhub: usage error: {path}: {line}; see `{path} --help`"


def plain_metavars(command: Any) -> Any:
    """Show SOURCE, FILE, PORT in help texts instead of Python types like <list[str]>."""
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False) or param.param_type_name not in ("option", "argument"):
            continue
        if param.name == "help":
            continue
        name = {"config": "FILE", "sources": "SOURCE", "workdir": "DIR", "root": "DIR"}.get(
            param.name, param.name.upper())
        param.metavar = name  # click adds [ ] and ... for optional and repeated arguments
        if hasattr(param, "display_type_rich"):  # typer would add "<list[str]>" beside it
            param.display_type_rich = lambda ctx=None: ""
    for sub in getattr(command, "commands", {}).values():
        plain_metavars(sub)
    return command
