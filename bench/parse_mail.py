"""Benchmark: the mail parser and mapping on ordinary and hostile messages.

    python bench/parse_mail.py            # 20,000 ordinary messages, each hostile one 20 times

Prints messages/s for ordinary support mail (headers + a text body), the slowest time
and the outcome per hostile message (tests/connectors/mailmaker.py), and peak RSS. The
hostile messages are cut as the connectors cut them (256 KiB of headers, 64 KiB of body).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.sdk.mail import MAX_HEADER_BYTES, MailOptions, message_record  # noqa: E402
from crm_model.mapping import MapContext, Reject  # noqa: E402
from crm_model.mapping.mail import map_message  # noqa: E402
from tests.connectors.mailmaker import hostile_messages, mail  # noqa: E402

CTX = MapContext("bench", "INBOX", "imap", MailOptions(company_domains=["acme.example"]).model_dump())


def one(raw: bytes) -> str:
    at = raw.find(b"\r\n\r\n")
    head, body = (raw[: at + 4], raw[at + 4:]) if at >= 0 else (raw, b"")
    record = message_record(head[: MAX_HEADER_BYTES + 1], body[: 64 * 1024], support=True)
    try:
        map_message(record, CTX)
        return "loaded"
    except Reject as exc:
        return f"rejected: {exc}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    ordinary = [mail(f"person{i}@example.com", f'"Doe{i}, Jane"', subject=f"Re: [Case #{i}] broken lamp",
                     msgid=f"m{i}@example.com", references=f"<root{i % 100}@example.com>",
                     body="Hello,\r\nthe lamp is broken.\r\n\r\n> quoted text\r\n" * 20)
                for i in range(args.messages)]
    started = time.perf_counter()
    for raw in ordinary:
        one(raw)
    seconds = time.perf_counter() - started
    print(f"ordinary support mail: {args.messages:,} messages in {seconds:.2f} s "
          f"({args.messages / seconds:,.0f} messages/s)")
    for name, raw in hostile_messages().items():
        worst = 0.0
        for _ in range(args.repeat):
            t = time.perf_counter()
            outcome = one(raw)
            worst = max(worst, time.perf_counter() - t)
        print(f"  {name:12} {len(raw):>10,} bytes  slowest {worst * 1000:7.1f} ms  {outcome}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
