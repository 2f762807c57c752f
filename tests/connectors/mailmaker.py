"""Test mail: plain messages, and hostile ones (each built here, by hand, to one RFC rule it breaks)."""

from __future__ import annotations


def mail(sender: str, name: str | None = None, *, subject: str = "Hello", msgid: str | None = None,
         to: str = "support@acme.example", cc: str | None = None, date: str = "Mon, 02 Nov 2026 09:00:00 +0000",
         references: str | None = None, body: str = "Hello,\r\nthanks.\r\n", extra: str = "",
         reply_to: str | None = None) -> bytes:
    lines = [f"From: {name} <{sender}>" if name else f"From: {sender}", f"To: {to}"]
    if cc:
        lines.append(f"Cc: {cc}")
    if reply_to:
        lines.append(f"Reply-To: {reply_to}")
    lines += [f"Subject: {subject}", f"Date: {date}"]
    if msgid:
        lines.append(f"Message-ID: <{msgid}>")
    if references:
        lines += [f"References: {references}", f"In-Reply-To: {references.split()[-1]}"]
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    head = "\r\n".join(lines) + "\r\n" + extra
    return head.encode() + b"\r\n" + body.encode()


def hostile_messages() -> dict[str, bytes]:
    """name -> raw message. Expected: each loads (cleaned) or is quarantined with a reason."""
    out: dict[str, bytes] = {}
    # header injection: an encoded word decoding to CR LF "Bcc:" inside the display name
    out["injection"] = (b"From: =?utf-8?q?Support_Team=0D=0ABcc=3A_all=40example=2Ecom?= <mallory@example.com>\r\n"
                        b"To: support@acme.example\r\nSubject: Invoice\r\nMessage-ID: <inject@example.com>\r\n"
                        b"Date: Mon, 02 Nov 2026 09:00:00 +0000\r\n\r\nCONFIDENTIAL pay now\r\n")
    # a charset that lies (says us-ascii, sends Latin-1 bytes) and an unknown one in an encoded word
    out["lying"] = (b"From: =?x-made-up?q?J=F6rg?= <joerg@example.com>\r\nTo: support@acme.example\r\n"
                    b"Subject: =?us-ascii?q?Kaputt=0A=FCberall?=\r\nMessage-ID: <lying@example.com>\r\n"
                    b"Date: not a date at all\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                    b"Das Ger\xe4t ist kaputt \xff\xfe\r\n")
    # undecodable 8-bit bytes straight in headers, a malformed address list, a header without a colon
    out["bytes"] = (b"From: \xc3\x28\xa0\xa1 <bytes@example.com>\r\nTo: ,,,<<>>@@, support@acme.example\r\n"
                    b"this line is not a header\r\nSubject: \xff\xfe\xfd\r\nMessage-ID: <bytes@example.com>\r\n"
                    b"\r\nbody\r\n")
    # a huge message: 6 MB of base64 "attachment" (only the configured body bytes are fetched)
    big = b"QUJD" * (6 * 1024 * 1024 // 4)
    out["huge"] = (b"From: big@example.com\r\nTo: support@acme.example\r\nSubject: Huge attachment\r\n"
                   b"Message-ID: <huge@example.com>\r\nMIME-Version: 1.0\r\n"
                   b"Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n--b0\r\n"
                   b"Content-Type: text/plain\r\n\r\nsee attached\r\n--b0\r\n"
                   b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                   + b"\r\n".join(big[i:i + 76] for i in range(0, len(big), 76)) + b"\r\n--b0--\r\n")
    # MIME nested 200 levels deep
    depth = 200
    body = b"".join(b"--n%d\r\nContent-Type: multipart/mixed; boundary=\"n%d\"\r\n\r\n" % (i, i + 1)
                    for i in range(depth))
    out["deep"] = (b"From: deep@example.com\r\nTo: support@acme.example\r\nSubject: deep\r\n"
                   b"Message-ID: <deep@example.com>\r\nMIME-Version: 1.0\r\n"
                   b"Content-Type: multipart/mixed; boundary=\"n0\"\r\n\r\n" + body + b"--n0--\r\n")
    # a header block of 300 KiB (one endless header)
    out["long_header"] = (b"From: long@example.com\r\nTo: support@acme.example\r\nX-Filler: "
                          + b"a" * (300 * 1024) + b"\r\nSubject: long\r\n\r\nbody\r\n")
    # 5,000 tiny parts in one multipart
    parts = b"".join(b"--p\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(5000))
    out["many_parts"] = (b"From: parts@example.com\r\nTo: support@acme.example\r\nSubject: parts\r\n"
                         b"Message-ID: <parts@example.com>\r\nMIME-Version: 1.0\r\n"
                         b"Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n" + parts + b"--p--\r\n")
    return out
