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

Signatures: HMAC-SHA256 over the raw body with the form's secret, sent either as
``X-Crmhub-Signature: sha256=<hex>`` or as Typeform sends it,
``Typeform-Signature: sha256=<base64>``.
"""

from __future__ import annotations

import base64
import codecs
import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import Field, SecretStr, field_validator

from connectors.sdk import Connector, ConnectorConfig, Record, StreamState, stream

FORM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MIN_SECRET_CHARS = 16
# An id the client sends must leave room for "form:" and "lead:" in a 255-character external_id.
MAX_SUBMISSION_ID_CHARS = 180
CRMHUB_SIGNATURE = "x-crmhub-signature"  # sha256=<hex>
TYPEFORM_SIGNATURE = "typeform-signature"  # sha256=<base64>, Typeform's documented format
BodyFormat = Literal["json", "form", "typeform"]


class FormConfig(ConnectorConfig):
    secret: SecretStr = Field(description="Shared secret: the key of the body's HMAC-SHA256 signature.")
    honeypot: str | None = Field(None, description="Hidden field that only spam bots fill in.")

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(f"must be at least {MIN_SECRET_CHARS} characters (use a random string)")
        return value


class WebhookConfig(ConnectorConfig):
    forms: dict[str, FormConfig] = Field(min_length=1, description="Form name (URL path part) -> its settings.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=10 * 1024 * 1024)
    default_region: str | None = Field(None, description="Country for phone numbers without +code, e.g. DE.")

    @field_validator("forms")
    @classmethod
    def _form_names(cls, value: dict[str, FormConfig]) -> dict[str, FormConfig]:
        for name in value:
            if not FORM_NAME.match(name):
                raise ValueError(f"form name {name!r} must be letters, digits, _ or - (it is part of the URL)")
        return value


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

    def verify(self, form: str, body: bytes, headers: Mapping[str, str]) -> bool:
        """Is ``body`` signed with ``form``'s secret? Checked before the body is parsed."""
        secret = self.config.forms[form].secret.get_secret_value().encode()
        digest = hmac.new(secret, body, hashlib.sha256).digest()
        for header, expected in ((CRMHUB_SIGNATURE, digest.hex()),
                                 (TYPEFORM_SIGNATURE, base64.b64encode(digest).decode())):
            given = _header(headers, header)
            if given is None:
                continue
            scheme, _, value = given.strip().partition("=")
            if scheme.lower() != "sha256":
                return False
            if header == CRMHUB_SIGNATURE:
                value = value.lower()
            return hmac.compare_digest(value.encode(), expected.encode())
        return False

    def submission(self, form: str, body: bytes, content_type: str, headers: Mapping[str, str],
                   received_at: dt.datetime) -> Record:
        """The record a verified request lands as: the body as sent, plus where and when."""
        body_format, fields = parse_body(body, content_type)
        if body_format == "json" and fields.get("event_type") == "form_response" \
                and isinstance(fields.get("form_response"), dict):
            body_format = "typeform"
        record: Record = {
            "form": form,
            "submission_id": _submission_id(body_format, fields, headers, body, received_at),
            "received_at": received_at.isoformat(),
            "format": body_format,
            "body": fields,
        }
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


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    media, *rest = (content_type or "").split(";")
    params = {}
    for part in rest:
        name, _, value = part.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return media.strip().lower(), params


def _submission_id(body_format: BodyFormat, fields: dict[str, Any], headers: Mapping[str, str],
                   body: bytes, received_at: dt.datetime) -> str:
    """The client's id for this submission, so a retried post updates instead of duplicating.

    Typeform: the response token. Others: a ``submission_id`` or ``id`` field, else an
    ``Idempotency-Key`` header. Without any, each post is new: a hash of body + receive time.
    """
    if body_format == "typeform":
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
    return hashlib.sha256(received_at.isoformat().encode() + b"\n" + body).hexdigest()[:32]


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
