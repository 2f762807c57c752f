"""Gmail (Gmail API v1, google-api-python-client with its bundled discovery document).

    sources:
      ann_gmail:
        connector: gmail
        config:
          credentials_file: secrets/gmail-reader.json   # service account (+ subject) or authorized user
          subject: ann@acme.example                     # the mailbox, for a service account
          labels: [INBOX, SENT, {name: Support, support: true}]   # default: INBOX and SENT
          company_domains: [acme.example]

Labels are the folders: a message is read when it carries one of the configured labels
(system labels by id, user labels by name). The first sync notes the mailbox's
``historyId`` (``users.getProfile``) and lists every label's messages
(``messages.list``, page by page, ``after:`` the source's start_date); later syncs ask
``history.list`` for what was added or labelled since the stored historyId, page by page.
A 404 there means the historyId expired (Google keeps about a week): the connector lists
everything again (messages are upserted by Message-ID, so nothing doubles).

Messages are fetched with ``format=metadata`` (headers only); messages with a support
label with ``format=full``, of which only the first text part is read, capped at
``body_max_bytes``. Scope: gmail.readonly (or gmail.metadata when no label is a support
label).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator
from typing import Any

from googleapiclient.errors import HttpError
from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.sdk import Connector, HttpConfig, Page, SourceError, StreamState, stream
from connectors.sdk.google import execute, google_credentials, google_service
from connectors.sdk.mail import (
    BODY_TEXT_CHARS,
    MAIL_OPTIONS,
    FolderConfig,
    MailOptions,
    folder_configs,
    gmail_record,
)
from connectors.sdk.streams import Record

log = logging.getLogger("crmhub.gmail")
GMAIL_API = "https://gmail.googleapis.com/"
SCOPES = ("https://www.googleapis.com/auth/gmail.readonly",)
HINTS = {
    400: "the request was refused: check the labels in the config",
    401: "the credentials were refused (an expired access_token, or a revoked key): renew them",
    403: ("access denied: grant the gmail.readonly scope (a service account needs domain-wide delegation "
          "and subject set to the mailbox) and enable the Gmail API in the Cloud project"),
    404: "not found",
    429: "the Gmail API quota is used up: sync less often or raise the quota",
}
SYSTEM_LABELS = frozenset({"INBOX", "SENT", "DRAFT", "SPAM", "TRASH", "IMPORTANT", "STARRED", "UNREAD",
                           "CATEGORY_PERSONAL", "CATEGORY_SOCIAL", "CATEGORY_PROMOTIONS",
                           "CATEGORY_UPDATES", "CATEGORY_FORUMS"})


class GmailConfig(MailOptions, HttpConfig):
    base_url: str = GMAIL_API
    credentials_file: str | None = Field(None, description="Service-account or authorized-user JSON file.")
    access_token: SecretStr | None = Field(None, description="A short-lived OAuth access token, used as is.")
    subject: str | None = Field(None, description="The mailbox a service account reads (domain-wide delegation).")
    labels: list[str | FolderConfig] = Field(default_factory=lambda: ["INBOX", "SENT"])
    support: bool = Field(False, description="Every label is a support queue.")
    page_size: int = Field(100, ge=1, le=500, description="Messages per list page (and per committed page).")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value):
        out = folder_configs(value)
        if not out:
            raise ValueError("list at least one label")
        return out

    @model_validator(mode="after")
    def _one_credential(self) -> GmailConfig:
        if (self.credentials_file is None) == (self.access_token is None):
            raise ValueError("set exactly one of credentials_file and access_token")
        if self.subject and not self.credentials_file:
            raise ValueError("subject needs a service-account credentials_file")
        return self


class GmailConnector(Connector):
    Config = GmailConfig
    config: GmailConfig
    mapping_options = MAIL_OPTIONS

    def __init__(self, config: GmailConfig, **kw: Any):
        super().__init__(config, **kw)
        self._service: Any = None
        self._label_names: dict[str, str] | None = None

    @property
    def service(self) -> Any:
        if self._service is None:
            cfg = self.config
            creds = google_credentials("gmail", access_token=cfg.access_token, credentials_file=cfg.credentials_file,
                                       subject=cfg.subject, scopes=SCOPES, base_dir=self.base_dir)
            self._service = google_service("gmail", "v1", creds, who="gmail", config=cfg)
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None

    # ------------------------------------------------------------------ labels

    def label_names(self) -> dict[str, str]:
        """Label id -> name (system labels: id = name)."""
        if self._label_names is None:
            body = self._execute(self.service.users().labels().list(userId="me"), "listing labels")
            self._label_names = {str(lb["id"]): str(lb.get("name") or lb["id"])
                                 for lb in body.get("labels") or [] if isinstance(lb, dict) and lb.get("id")}
        return self._label_names

    def wanted_labels(self) -> dict[str, FolderConfig]:
        """Configured labels by id; a name not found is a clear error."""
        names = self.label_names()
        by_name = {name.casefold(): label_id for label_id, name in names.items()}
        out = {}
        for label in self.config.labels:
            if label.name in names:
                out[label.name] = label
            elif label.name.casefold() in by_name:
                out[by_name[label.name.casefold()]] = label
            else:
                known = ", ".join(sorted(names.values()))
                raise SourceError(f"gmail: no label {label.name!r} in this mailbox (labels: {known[:500]})")
        return out

    # ------------------------------------------------------------------ the stream

    @stream(primary_key="message_key")
    def messages(self, state: StreamState) -> Iterator[Page]:
        wanted = self.wanted_labels()
        history_id = state.saved.get("history_id")
        if history_id:
            try:
                new_history = yield from self._changes(str(history_id), wanted)
                return {"history_id": new_history, "cursor": f"history {new_history}"}
            except _HistoryExpired:
                log.warning("gmail: the stored historyId %s has expired; listing every message again", history_id)
        profile = self._execute(self.service.users().getProfile(userId="me"), "reading the profile")
        start = str(profile.get("historyId") or "")
        if not start:
            raise SourceError("gmail: the profile has no historyId")
        yield from self._full_list(wanted, state)
        return {"history_id": start, "cursor": f"history {start}"}

    def _full_list(self, wanted: dict[str, FolderConfig], state: StreamState) -> Iterator[Page]:
        query = f"after:{state.start_date.strftime('%Y/%m/%d')}" if state.start_date else None
        seen: set[str] = set()
        for label_id in wanted:
            token = None
            tokens_seen: set[str] = set()
            while True:
                request = self.service.users().messages().list(
                    userId="me", labelIds=[label_id], q=query, pageToken=token, maxResults=self.config.page_size)
                body = self._execute(request, f"listing label {label_id}")
                ids = [m["id"] for m in body.get("messages") or [] if isinstance(m, dict) and m.get("id")]
                fresh = [i for i in ids if i not in seen]
                seen.update(fresh)
                yield Page(self._get_all(fresh, wanted))
                token = body.get("nextPageToken")
                if not token:
                    break
                if token in tokens_seen:
                    raise SourceError(f"gmail: label {label_id}: the API repeated a page token; stopping")
                tokens_seen.add(token)

    def _changes(self, start: str, wanted: dict[str, FolderConfig]) -> Iterator[Page]:
        token = None
        tokens_seen: set[str] = set()
        latest = start
        seen: set[str] = set()
        while True:
            request = self.service.users().history().list(
                userId="me", startHistoryId=start, pageToken=token, maxResults=self.config.page_size,
                historyTypes=["messageAdded", "labelAdded"])
            try:
                body = self._execute(request, "listing history", passthrough=(404,))
            except HttpError:  # 404: the stored historyId is too old
                raise _HistoryExpired() from None
            ids = []
            for entry in body.get("history") or []:
                if not isinstance(entry, dict):
                    continue
                for added in entry.get("messagesAdded") or []:
                    message = added.get("message") or {}
                    if set(message.get("labelIds") or []) & wanted.keys():
                        ids.append(message.get("id"))
                for added in entry.get("labelsAdded") or []:
                    if set(added.get("labelIds") or []) & wanted.keys():
                        ids.append((added.get("message") or {}).get("id"))
            fresh = [i for i in dict.fromkeys(ids) if i and i not in seen]
            seen.update(fresh)
            latest = str(body.get("historyId") or latest)
            yield Page(self._get_all(fresh, wanted))
            token = body.get("nextPageToken")
            if not token:
                return latest
            if token in tokens_seen:
                raise SourceError("gmail: history.list repeated a page token; stopping")
            tokens_seen.add(token)

    def _get_all(self, ids: list[str], wanted: dict[str, FolderConfig]) -> list[Record]:
        records = []
        for message_id in ids:
            record = self._get(message_id, wanted)
            if record is not None:
                records.append(record)
        return records

    def _get(self, message_id: str, wanted: dict[str, FolderConfig]) -> Record | None:
        # a support label needs the text: format=full; everything else: headers only
        names = self.label_names()
        request = self.service.users().messages().get(userId="me", id=message_id, format="metadata")
        try:
            message = self._execute(request, f"reading message {message_id}", passthrough=(404,))
        except HttpError:
            return None  # deleted since it was listed: there is nothing left to read
        label_ids = [str(x) for x in message.get("labelIds") or []]
        mine = [wanted[x] for x in label_ids if x in wanted]
        support = self.config.support or any(f.support for f in mine)
        body_text = None
        if support:
            full = self._execute(self.service.users().messages().get(userId="me", id=message_id, format="full"),
                                 f"reading message {message_id}")
            body_text = gmail_body(full.get("payload") or {}, self.config.body_max_bytes)
        payload = message.get("payload") or {}
        record = gmail_record(
            payload.get("headers") or [], folder=mine[0].name if mine else None,
            labels=[names.get(x, x) for x in label_ids], thread=message.get("threadId"),
            gmail_id=message.get("id"), support=support, sent_folder="SENT" in label_ids,
            size=message.get("sizeEstimate"))
        if support and "_error" not in record:
            record["body"] = body_text
        return record

    # ------------------------------------------------------------------ requests

    def _execute(self, request: Any, what: str, passthrough: tuple[int, ...] = ()) -> dict[str, Any]:
        return execute(request, who="gmail", what=what, retries=self.config.max_retries, hints=HINTS,
                       credentials=self.config.credentials_file, passthrough=passthrough)

    def check(self) -> str:
        profile = self._execute(self.service.users().getProfile(userId="me"), "reading the profile")
        labels = ", ".join(f.name for f in self.wanted_labels().values())
        return f"ok: mailbox {profile.get('emailAddress')}, {profile.get('messagesTotal')} messages; labels: {labels}"


class _HistoryExpired(Exception):
    """history.list answered 404: the stored historyId is too old."""


def gmail_body(payload: dict[str, Any], max_bytes: int) -> str | None:
    """The first text/plain part of a ``format=full`` payload (else text/html), decoded and capped."""
    from connectors.sdk.mail import MAX_PARTS, body_text_from_html, clean_body

    stack = [(payload, 0)]
    parts = 0
    html = None
    while stack:
        part, depth = stack.pop()
        parts += 1
        if parts > MAX_PARTS or depth > 50 or not isinstance(part, dict):
            return None
        children = part.get("parts")
        if isinstance(children, list):
            stack.extend((c, depth + 1) for c in reversed(children))
            continue
        mime = str(part.get("mimeType") or "").lower()
        data = (part.get("body") or {}).get("data")
        if mime not in ("text/plain", "text/html") or not isinstance(data, str):
            continue
        try:
            chunk = data[: ((max_bytes + 2) // 3) * 4]
            raw = base64.urlsafe_b64decode(chunk + "=" * (-len(chunk) % 4))[:max_bytes]
        except (binascii.Error, ValueError):
            continue
        text = raw.decode("utf-8", "replace")  # the Gmail API hands out text parts as UTF-8
        if mime == "text/plain":
            return clean_body(text)[:BODY_TEXT_CHARS] or None
        html = html or text
    return (body_text_from_html(html)[:BODY_TEXT_CHARS] or None) if html else None


