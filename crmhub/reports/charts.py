"""Charts as PNG (matplotlib, no display): a title, labelled axes with units, readable at a glance."""

from __future__ import annotations

import io
from typing import Any

from crmhub.reports.definitions import Chart

PERCENT = ("ctr", "conversion_rate", "gross_margin_rate", "lead_to_prospect", "prospect_to_customer",
           "lead_to_customer")
COLOURS = ("#2563eb", "#f59e0b", "#10b981", "#ef4444")


def _label(value: Any, width: int = 32) -> str:
    text = "(none)" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def draw(chart: Chart, rows: list[dict[str, Any]]) -> bytes:
    from matplotlib.figure import Figure  # no pyplot: no display, no global state

    from crmhub.reports.build import as_date, number

    scale = {y: 100.0 if y in PERCENT else 1.0 for y in chart.y}
    fig = Figure(figsize=(6.4, 3.2), dpi=100)
    ax = fig.add_subplot()
    ax.set_title(chart.title, fontsize=11, loc="left", fontweight="bold")
    if chart.kind == "line":
        # rows with a currency: one line per currency and figure (amounts are never added up)
        currencies = list(dict.fromkeys(r.get("currency") for r in rows)) if chart.x != "period" else [None]
        lines = [(y, c) for y in chart.y for c in currencies]
        for i, (y, cur) in enumerate(lines):
            mine = [r for r in rows if r.get(y) is not None and (cur is None or r.get("currency") == cur)]
            xs = [as_date(r[chart.x]) for r in mine]
            ys = [number(r[y]) * scale[y] for r in mine]
            name = y.replace("_", " ") + (f" ({cur})" if cur and len(currencies) > 1 else "")
            ax.plot(xs, ys, marker="o", markersize=3, color=COLOURS[i % len(COLOURS)], label=name)
        if len(lines) > 1 and chart.x != "period":
            ax.legend(fontsize=8, frameon=False)
        if chart.x == "period":  # the forecast section: forecasts dashed, after the actuals
            fx = [as_date(r["period"]) for r in rows if r.get("forecast") is not None]
            fy = [number(r["forecast"]) for r in rows if r.get("forecast") is not None]
            last = [r for r in rows if r.get("revenue") is not None][-1:]
            if last:
                fx, fy = [as_date(last[0]["period"]), *fx], [number(last[0]["revenue"]), *fy]
            ax.plot(fx, fy, linestyle="--", marker="o", markersize=3, color=COLOURS[1], label="forecast")
            ax.legend(fontsize=8, frameon=False)
        fig.autofmt_xdate()
        ax.set_ylim(bottom=0)
    else:
        shown = rows[: chart.limit]
        labels = [_label(r.get(chart.x)) for r in shown]
        width = 0.8 / len(chart.y)
        for i, y in enumerate(chart.y):
            values = [number(r.get(y)) * scale[y] for r in shown]
            positions = [p + (i - (len(chart.y) - 1) / 2) * width for p in range(len(shown))]
            if chart.kind == "barh":
                ax.barh(positions, values, height=width, color=COLOURS[i], label=y.replace("_", " "))
            else:
                ax.bar(positions, values, width=width, color=COLOURS[i], label=y.replace("_", " "))
        if chart.kind == "barh":
            ax.set_yticks(range(len(shown)), labels, fontsize=8)
            ax.invert_yaxis()
        else:
            ax.set_xticks(range(len(shown)), labels, fontsize=8, rotation=20 if len(shown) > 4 else 0,
                          ha="right" if len(shown) > 4 else "center")
        if len(chart.y) > 1:
            ax.legend(fontsize=8, frameon=False)
    value_axis, label_axis = (ax.set_xlabel, ax.set_ylabel) if chart.kind == "barh" else (ax.set_ylabel, ax.set_xlabel)
    value_axis(chart.unit, fontsize=9)
    label_axis(chart.xlabel or chart.x.replace("_", " "), fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(axis="x" if chart.kind == "barh" else "y", color="#e5e7eb")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    # fixed margins: tight_layout measures every label and costs more than the drawing
    fig.subplots_adjust(left=0.34 if chart.kind == "barh" else 0.11, right=0.97, top=0.88,
                        bottom=0.16 if chart.kind == "barh" else 0.24)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
