"""Form webhooks: a website's form handler, or Typeform, posts each submission to crmhub.

    sources:
      website:
        connector: webhook
        config:
          forms:
            contact:                               # POST /forms/website/contact
              secret: ${CONTACT_FORM_SECRET}       # HMAC-SHA256 key shared with the site
              honeypot: website                    # a hidden field only bots fill in
            demo:
              secret: ${TYPEFORM_WEBHOOK_SECRET}   # Typeform's webhook posts here directly
          max_body_bytes: 65536                    # larger bodies get 413
          default_region: DE                       # phone numbers without +country code

`crmhub serve` (or the Airflow plugin in airflow_plugins/) answers the HTTP requests;
this module decides what a request means: is it signed, what is its body, which
submission is it. Nothing is pulled (``push = True``): each submission lands with
``crm_model.sync.ingest`` as one record of the ``submissions`` stream, keyed by
(form, submission_id), and ``crm_model.mapping.webhook`` turns it into a lead.

Signatures: ``X-Crmhub-Signature: t=<unix time>,v1=<hex>`` where v1 is HMAC-SHA256 with
the form's secret over ``"<t>." + raw body`` (as Stripe and Slack sign); a timestamp more
than ``signature_tolerance_seconds`` away from now is refused, so an old body cannot be
replayed. Typeform's own ``Typeform-Signature: sha256=<base64>`` covers the body only
(Typeform signs no time); the body-only ``X-Crmhub-Signature: sha256=<hex>`` is accepted
only for a form with ``legacy_body_signature: true``.

A signed body with a value no warehouse can store as it is (a NUL character, NaN,
Infinity, a number beyond a double like 1e999, a lone UTF-16 surrogate) is kept as text
and quarantined with the reason, answered once like any other submission.
"""

from __future__ import annotations

import base64
import codecs
import datetime as dt
import hashlib
import hmac
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import Field, SecretStr, field_validator

from connectors.sdk import Connector, ConnectorConfig, Record, StreamState, stream

FORM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MIN_SECRET_CHARS = 16
# An id the client sends must leave room for "form:" and "lead:" in a 255-character external_id.
MAX_SUBMISSION_ID_CHARS = 180
CRMHUB_SIGNATURE = "x-crmhub-signature"  # t=<unix time>,v1=<hex> (or legacy sha256=<hex>)
TYPEFORM_SIGNATURE = "typeform-signature"  # sha256=<base64>, Typeform's documented format
BodyFormat = Literal["json", "form", "typeform"]
# Deeper JSON is refused before it is parsed: no form nests like this, and Python's parser
# (and every dump of the record after it) would recurse once per level.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


class FormConfig(ConnectorConfig):
    secret: SecretStr = Field(description="Shared secret: the key of the body's HMAC-SHA256 signature.")
    honeypot: str | None = Field(None, description="Hidden field that only spam bots fill in.")
    legacy_body_signature: bool = Field(
        False, description="Also accept X-Crmhub-Signature: sha256=<hex> over the body alone "
                           "(no timestamp, so no protection against replays).")

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(f"must be at least {MIN_SECRET_CHARS} characters (use a random string)")
        return value


class WebhookConfig(ConnectorConfig):
    forms: dict[str, FormConfig] = Field(min_length=1, description="Form name (URL path part) -> its settings.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=10 * 1024 * 1024)
    signature_tolerance_seconds: int = Field(
        300, ge=1, le=86_400, description="How far a signed timestamp may be from now.")
    read_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Time a client has to send the whole body.")
    default_region: str | None = Field(None, description="Country for phone numbers without +code, e.g. DE.")

    @field_validator("forms")
    @classmethod
    def _form_names(cls, value: dict[str, FormConfig]) -> dict[str, FormConfig]:
        for name in value:
            if not FORM_NAME.match(name):
                raise ValueError(f"form name {name!r} must be letters, digits, _ or - (it is part of the URL)")
        return value


@dataclass(frozen=True)
class Verdict:
    """The outcome of a signature check: true when the request is signed and fresh."""

    ok: bool
    problem: str | None = None  # why it was refused, for the log line
    signed_at: int | None = None  # the signed timestamp (t=), when the scheme has one

    def __bool__(self) -> bool:
        return self.ok


class BadSubmission(ValueError):
    """A signed body that cannot be read as a submission; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class WebhookConnector(Connector):
    Config = WebhookConfig
    config: WebhookConfig
    push = True
    mapping_options = ("default_region",)

    @stream(primary_key=("form", "submission_id"))
    def submissions(self, state: StreamState) -> Iterator[list[Record]]:
        """Pushed, never pulled: `crmhub serve` lands each submission with ingest()."""
        yield from ()

    def check(self) -> str:
        forms = ", ".join(f"/forms/{self.source}/{name}" for name in self.config.forms)
        return f"push source: `crmhub serve` receives POST {forms}"

    def form(self, name: str) -> FormConfig | None:
        return self.config.forms.get(name)

    def verify(self, form: str, body: bytes, headers: Mapping[str, str],
               now: dt.datetime | None = None) -> Verdict:
        """Is ``body`` signed with ``form``'s secret, and fresh? Checked before the body is parsed."""
        settings = self.config.forms[form]
        secret = settings.secret.get_secret_value().encode()
        given = _header(headers, CRMHUB_SIGNATURE)
        if given is not None:
            fields = dict(part.strip().partition("=")[::2] for part in given.split(","))
            if "t" in fields:
                return self._timestamped(secret, body, given, now)
            scheme, _, value = given.strip().partition("=")
            if scheme.lower() != "sha256":
                return Verdict(False, f"unknown signature scheme {scheme[:20]!r}")
            if not settings.legacy_body_signature:
                return Verdict(False, "body-only signature (sha256=) refused: sign t=<unix time>,v1=<hex>")
            expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
            ok = hmac.compare_digest(value.lower().encode(), expected.encode())
            return Verdict(ok, None if ok else "signature does not match")
        given = _header(headers, TYPEFORM_SIGNATURE)
        if given is not None:
            scheme, _, value = given.strip().partition("=")
            expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()
            ok = scheme.lower() == "sha256" and hmac.compare_digest(value.encode(), expected.encode())
            return Verdict(ok, None if ok else "signature does not match")
        return Verdict(False, "no signature header")

    def _timestamped(self, secret: bytes, body: bytes, given: str, now: dt.datetime | None) -> Verdict:
        stamp, signatures = None, []
        for part in given.split(","):
            name, _, value = part.strip().partition("=")
            if name == "t":
                stamp = value
            elif name == "v1":
                signatures.append(value.lower())  # several while a secret is rotated
        if stamp is None or not stamp.isdigit() or len(stamp) > 12 or not signatures:
            return Verdict(False, "malformed signature header (expected t=<unix time>,v1=<hex>)")
        expected = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest().encode()
        if not any(hmac.compare_digest(s.encode(), expected) for s in signatures):
            return Verdict(False, "signature does not match")
        now_s = (now or dt.datetime.now(dt.UTC)).timestamp()
        skew = now_s - int(stamp)
        tolerance = self.config.signature_tolerance_seconds
        if abs(skew) > tolerance:
            when = "old" if skew > 0 else "in the future"
            return Verdict(False, f"signed timestamp is {abs(skew):.0f} s {when} (tolerance {tolerance} s): "
                                  "a replay, or a clock that is off")
        return Verdict(True, signed_at=int(stamp))

    def submission(self, form: str, body: bytes, content_type: str, headers: Mapping[str, str],
                   received_at: dt.datetime, signed_at: int | None = None) -> Record:
        """The record a verified request lands as: the body as sent, plus where and when.

        ``signed_at``: the signed timestamp; it identifies an id-less submission (a
        replay of it is the same submission, not a new lead) and orders deliveries.
        """
        body_format, fields = parse_body(body, content_type)
        if body_format == "json" and fields.get("event_type") == "form_response" \
                and isinstance(fields.get("form_response"), dict):
            body_format = "typeform"
        identity = f"t={signed_at}" if signed_at is not None else received_at.isoformat()
        submission_id = _submission_id(body_format, fields, headers, body, identity)
        if unstorable(submission_id):
            submission_id = _submission_id(body_format, {}, {}, body, identity)
        record: Record = {
            "form": form,
            "submission_id": submission_id,
            "received_at": received_at.isoformat(),
            "format": body_format,
            "body": fields,
        }
        if signed_at is not None:
            record["signed_at"] = signed_at
        problem = unstorable(fields)
        if problem:  # kept as text, quarantined by the mapping with this reason
            record["body"] = None
            record["unreadable"] = problem
            record["body_text"] = body.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
            return record
        referer = _header(headers, "referer")
        if referer:
            record["referer"] = referer
        honeypot = self.config.forms[form].honeypot
        if honeypot and _filled(_honeypot_value(body_format, fields, honeypot)):
            record["honeypot"] = honeypot  # the mapping quarantines it as spam, nothing is lost
        return record


def parse_body(body: bytes, content_type: str) -> tuple[BodyFormat, dict[str, Any]]:
    """A JSON object or form-encoded fields (a repeated field becomes a list)."""
    media, params = _media_type(content_type)
    if media == "application/json" or media.endswith("+json"):
        if _json_depth(body) > MAX_JSON_DEPTH:
            raise BadSubmission(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise BadSubmission(f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadSubmission("a JSON body must be an object of fields")
        return "json", data
    if media == "application/x-www-form-urlencoded":
        charset = params.get("charset", "utf-8")
        try:
            codecs.lookup(charset)
            text = body.decode(charset)
        except LookupError:
            raise BadSubmission(f"unknown charset {charset!r}", status=415) from None
        except UnicodeDecodeError:
            raise BadSubmission(f"body is not {charset} text") from None
        fields: dict[str, list[str]] = {}
        for name, value in parse_qsl(text, keep_blank_values=True):
            fields.setdefault(name, []).append(value)
        return "form", {name: values[0] if len(values) == 1 else values for name, values in fields.items()}
    raise BadSubmission(f"content type {media or '(none)'} is not supported: send application/json "
                        "or application/x-www-form-urlencoded", status=415)


def _json_depth(body: bytes) -> int:
    """How deep a JSON text nests (strings skipped), without parsing it."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, bytes(b for b in range(256) if b not in b"[]{}"))
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in (0x5B, 0x7B) else -1
        deepest = max(deepest, depth)
    return deepest


def unstorable(value: Any, where: str = "") -> str | None:
    """Why ``value`` cannot be stored as it is in every warehouse, or None.

    NUL characters (PostgreSQL text refuses them), non-finite numbers (NaN, Infinity,
    1e999 parsed as infinity: no JSON column takes them) and lone UTF-16 surrogates
    (not encodable as UTF-8).
    """
    if isinstance(value, str):
        if "\x00" in value:
            return f"{where or 'a value'}: contains a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where or 'a value'}: contains a lone UTF-16 surrogate"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where or 'a value'}: {value!r} is not a finite number (NaN, Infinity or beyond 1e308)"
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            problem = unstorable(key, f"field name {where}") or unstorable(item, name)
            if problem:
                return problem.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
        return None
    if isinstance(value, list):
        for n, item in enumerate(value):
            problem = unstorable(item, f"{where}[{n}]")
            if problem:
                return problem
    return None


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    media, *rest = (content_type or "").split(";")
    params = {}
    for part in rest:
        name, _, value = part.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return media.strip().lower(), params


def _submission_id(body_format: BodyFormat, fields: dict[str, Any], headers: Mapping[str, str],
                   body: bytes, identity: str) -> str:
    """The client's id for this submission, so a retried post updates instead of duplicating.

    Typeform: the response token. Others: a ``submission_id`` or ``id`` field, else an
    ``Idempotency-Key`` header. Without any: a hash of the body and ``identity`` (the
    signed timestamp: a replay is the same submission; else the receive time: each post is new).
    """
    if body_format == "typeform" and isinstance(fields.get("form_response"), dict):
        candidates = [fields["form_response"].get("token"), fields.get("event_id")]
    else:
        candidates = [fields.get("submission_id"), fields.get("id")]
    candidates.append(_header(headers, "idempotency-key"))
    for candidate in candidates:
        if isinstance(candidate, (str, int)) and not isinstance(candidate, bool) and str(candidate).strip():
            found = str(candidate).strip()
            if len(found) > MAX_SUBMISSION_ID_CHARS:
                raise BadSubmission(f"submission id longer than {MAX_SUBMISSION_ID_CHARS} characters")
            return found
    return hashlib.sha256(identity.encode() + b"\n" + body).hexdigest()[:32]


def _honeypot_value(body_format: BodyFormat, fields: dict[str, Any], name: str) -> Any:
    if body_format == "typeform":
        return (fields["form_response"].get("hidden") or {}).get(name)
    return fields.get(name)


def _filled(value: Any) -> bool:
    if isinstance(value, list):
        return any(_filled(v) for v in value)
    return value is not None and str(value).strip() != ""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Header lookup that works for case-insensitive (Starlette) and plain dicts."""
    value = headers.get(name)
    if value is None and not hasattr(headers, "getlist"):
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value
