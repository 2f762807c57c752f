"""ZzProbe29034: <what this source is, and which of its data crmhub reads>.

    sources:
      my_zz_probe_29034:
        connector: zz_probe_29034
        config:
          token: ${ZZ_PROBE_29034_TOKEN}
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import SecretStr

from connectors.sdk import Connector, Http, HttpConfig, StreamState, paginate, stream


class ZzProbe29034Config(HttpConfig):
    base_url: str = "https://api.zz_probe_29034.example"
    token: SecretStr
    page_size: int = 100


class ZzProbe29034Connector(Connector):
    Config = ZzProbe29034Config
    config: ZzProbe29034Config

    def __init__(self, config: ZzProbe29034Config, **kw):
        super().__init__(config, **kw)
        self.http = Http(config.base_url, name="zz_probe_29034", timeout=config.timeout, max_retries=config.max_retries,
                         headers={"Authorization": f"Bearer {config.token.get_secret_value()}"})

    @stream(primary_key="id", cursor="updated_at")
    def contacts(self, state: StreamState) -> Iterator[list[dict]]:
        since = state.since()

        def fetch(cursor):
            params = {"limit": self.config.page_size, "cursor": cursor,
                      "updated_since": since.isoformat() if since else None}
            body = self.http.get_json("/v1/contacts", params=params)
            return body["data"], body.get("next_cursor")

        yield from paginate(fetch, what="zz_probe_29034 contacts")

    def close(self) -> None:
        self.http.close()
