"""A self-contained HTML page for one gold evaluation: metrics, an F1/EM bar chart per tag, failures."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from html import escape

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;margin:2rem auto;max-width:1100px;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #dde2ea;padding-bottom:.3rem}
.sub{color:#5b6475;margin-top:0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #eceff4;vertical-align:top;overflow-wrap:anywhere}
th{background:#f5f7fa;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.metrics{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:.6rem}
.card{border:1px solid #dde2ea;border-radius:8px;padding:.6rem .8rem}.card b{display:block;font-size:1.35rem}
.card span{color:#5b6475;font-size:.85rem}.card.low{border-color:#d9534f;background:#fdf3f2}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;vertical-align:middle}
code{background:#f5f7fa;padding:0 .25rem;border-radius:3px}
.ans{background:#eef3fb;padding:0 .25rem;border-radius:3px}
table.narrow{width:auto;min-width:420px}.na{color:#8a93a3;font-style:italic}
"""

HEADLINE_METRICS = ("f1", "em", "recall@1", "recall@5", "recall@k", "mrr", "citation_precision",
                    "snippet_holds_answer", "no_answer_accuracy", "no_answer_precision", "no_answer_recall",
                    "no_answer_auc", "latency_p50_ms", "latency_p95_ms")
F1_COLOUR, EM_COLOUR = "#3b6fd4", "#9db8ec"


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _metric_cards(summary: dict, thresholds: dict) -> str:
    cards = []
    for name in HEADLINE_METRICS:
        value = summary.get(name)
        low = name in thresholds and (value is None or math.isnan(value) or value < thresholds[name])
        digits = 0 if name.endswith("_ms") else 3
        note = f" (min {thresholds[name]})" if name in thresholds else ""
        cards.append(f'<div class="card{" low" if low else ""}"><b>{_number(value, digits)}</b>'
                     f"<span>{escape(name)}{escape(note)}</span></div>")
    return f'<div class="metrics">{"".join(cards)}</div>'


def _tag_chart(tags: dict[str, dict]) -> str:
    """Horizontal bars: F1 and EM for each tag, on a 0-1 axis."""
    label_width, bar_width, row_height = 150, 760, 34
    height = row_height * len(tags) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + bar_width + 70}" height="{height}" '
             f'role="img" aria-label="F1 and EM per tag" font-size="13">']
    for tick in (0, .25, .5, .75, 1):
        x = label_width + tick * bar_width
        parts.append(f'<line x1="{x}" y1="0" x2="{x}" y2="{height - 20}" stroke="#e3e7ee"/>'
                     f'<text x="{x}" y="{height - 5}" text-anchor="middle" fill="#5b6475">{tick:g}</text>')
    for row, (tag, stats) in enumerate(tags.items()):
        y = row * row_height + 4
        parts.append(f'<text x="{label_width - 8}" y="{y + 17}" text-anchor="end">{escape(tag)} '
                     f'<tspan fill="#5b6475">({stats["n"]})</tspan></text>')
        for offset, key, colour in ((0, "f1", F1_COLOUR), (14, "em", EM_COLOUR)):
            value = stats[key]
            parts.append(f'<rect x="{label_width}" y="{y + offset}" width="{max(value, 0) * bar_width:.1f}" '
                         f'height="12" fill="{colour}"><title>{escape(tag)} {key.upper()} {value:.3f}</title></rect>')
        parts.append(f'<text x="{label_width + stats["f1"] * bar_width + 6:.1f}" y="{y + 11}" '
                     f'fill="#1d2330">{stats["f1"]:.2f}</text>')
    parts.append("</svg>")
    legend = (f'<p class="legend"><i style="background:{F1_COLOUR}"></i>F1'
              f'<i style="background:{EM_COLOUR}"></i>EM</p>')
    return legend + "".join(parts)


def _tag_table(tags: dict[str, dict]) -> str:
    rows = "".join(f'<tr><td>{escape(tag)}</td><td class="num">{s["n"]}</td><td class="num">{s["em"]:.3f}</td>'
                   f'<td class="num">{s["f1"]:.3f}</td></tr>' for tag, s in tags.items())
    return f'<table class="narrow"><tr><th>tag</th><th>items</th><th>EM</th><th>F1</th></tr>{rows}</table>'


def _failure_table(failed) -> str:
    if not failed:
        return "<p>Every question was answered exactly.</p>"
    rows = []
    for o in failed:
        expected = "<br>".join(f'<span class="ans">{escape(a)}</span>' for a in o.item.answers) or '<span class="na">no answer</span>'
        got = f'<span class="ans">{escape(o.prediction)}</span>' if o.prediction else '<span class="na">no answer</span>'
        cited = ", ".join(sorted({escape(doc_id) for doc_id, _ in o.citations})) or "–"
        rank = o.source_rank or ("–" if not o.item.answerable else "missed")
        rows.append(f"<tr><td>{escape(o.item.id)}</td><td>{escape(o.item.question)}<br>"
                    f'<span class="na">{escape(", ".join(o.item.tags))}</span></td><td>{expected}</td>'
                    f'<td>{got}</td><td class="num">{o.f1:.2f}</td><td class="num">{o.score:.2f}</td>'
                    f"<td>{escape(', '.join(o.item.sources)) or '–'}</td><td class=\"num\">{rank}</td><td>{cited}</td></tr>")
    return ("<table><tr><th>id</th><th>question</th><th>expected</th><th>got</th><th>F1</th><th>score</th>"
            f"<th>gold sources</th><th>gold rank</th><th>cited</th></tr>{''.join(rows)}</table>")


def render_report(summary: dict, tags: dict[str, dict], failed, config: dict) -> str:
    thresholds = config.get("eval", {}).get("thresholds", {})
    reader = config.get("reader", {})
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    all_rows = "".join(f'<tr><td>{escape(k)}</td><td class="num">{_number(v)}</td></tr>' for k, v in summary.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Byline evaluation</title><style>{STYLE}</style></head>
<body>
<h1>Byline evaluation</h1>
<p class="sub">{summary.get("items")} gold questions ({summary.get("answerable")} answerable) · reader
<code>{escape(str(reader.get("model", "?")))}</code> · no-answer threshold {reader.get("no_answer_threshold", "?")}
· {generated}</p>
<h2>Headline metrics</h2>
{_metric_cards(summary, thresholds)}
<h2>F1 and EM by tag</h2>
{_tag_chart(tags)}
{_tag_table(tags)}
<h2>Failures ({len(failed)})</h2>
{_failure_table(failed)}
<h2>All metrics</h2>
<table><tr><th>metric</th><th>value</th></tr>{all_rows}</table>
</body></html>
"""
