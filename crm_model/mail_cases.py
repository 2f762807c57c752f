"""Support cases from mail: link each case to the product its mail names.

``sql/model/05_mail_service_cases.sql`` builds one ``service_case`` per support thread.
Which product a case is about is a text search (a SKU or a product title, as a whole
word, in the subject or in the customer's own words), which SQL does not do portably;
it runs here, after the SQL, in the same transaction. A case is linked once; a link is
never replaced by a later guess. SKUs win over titles, longer titles over shorter ones
("Kettle Pro 2" over "Kettle"). SKUs shorter than 3 and titles shorter than 4
characters are ignored (too likely to match ordinary words).
"""

from __future__ import annotations

import re
from collections import defaultdict

from sqlalchemy import Connection, text

MIN_SKU = 3
MIN_TITLE = 4


def _word(term: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(" ".join(term.casefold().split())) + r"(?!\w)")


def link_products(conn: Connection, everything: bool = True) -> int:
    """Set product_source/product_id on mail cases that name a product; returns how many were linked.

    ``everything`` false: only the cases of threads with a message written since the last
    model run (``email_message.model_pending``); `crmhub model` asks for every case when
    the products changed or the run is from scratch."""
    threads = "(m.source, m.case_id) IN (SELECT source, case_id FROM email_message WHERE model_pending = true)"
    scope = "" if everything else f" AND {threads}"
    cases = conn.execute(text(
        "SELECT c.source, c.external_id FROM service_case c "
        "WHERE c.product_id IS NULL AND c.channel = 'email' AND EXISTS ("
        "  SELECT 1 FROM email_message m WHERE m.source = c.source AND m.case_id = c.external_id)"
    ) if everything else text(  # from the pending messages' threads, not from every case
        "SELECT DISTINCT c.source, c.external_id FROM email_message m "
        "JOIN service_case c ON c.source = m.source AND c.external_id = m.case_id "
        "WHERE m.model_pending = true AND c.product_id IS NULL AND c.channel = 'email'"
    )).all()
    if not cases:
        return 0
    terms: list[tuple[int, int, re.Pattern[str], str, str]] = []  # (rank, -length, pattern, source, id)
    for p in conn.execute(text("SELECT source, external_id, sku, title FROM product ORDER BY source, external_id")):
        if p.sku and len(p.sku.strip()) >= MIN_SKU:
            terms.append((0, -len(p.sku), _word(p.sku), p.source, p.external_id))
        if p.title and len(p.title.strip()) >= MIN_TITLE:
            terms.append((1, -len(p.title), _word(p.title), p.source, p.external_id))
    if not terms:
        return 0
    terms.sort(key=lambda t: (t[0], t[1], t[3], t[4]))
    texts: dict[tuple[str, str], list[str]] = defaultdict(list)
    wanted = {(c.source, c.external_id) for c in cases}
    for m in conn.execute(text(
        "SELECT m.source, m.case_id, m.subject, m.body_excerpt FROM email_message m "
        "WHERE m.case_id IS NOT NULL AND m.direction = 'inbound'" + scope + " ORDER BY m.sent_at"
    )):
        if (m.source, m.case_id) in wanted:
            texts[(m.source, m.case_id)].append(f"{m.subject or ''}\n{m.body_excerpt or ''}")
    links = []
    for case_key, parts in texts.items():
        folded = " ".join("\n".join(parts).casefold().split())
        for _, _, pattern, source, product_id in terms:
            if pattern.search(folded):
                links.append({"ps": source, "p": product_id, "s": case_key[0], "e": case_key[1]})
                break
    if links:
        conn.execute(text("UPDATE service_case SET product_source = :ps, product_id = :p "
                          "WHERE source = :s AND external_id = :e"), links)
    return len(links)
