"""The similarity report: one self-contained HTML page (plots embedded) and a CSV of the pairs.

Everything a student wrote (names of folders, code, tensor names, archive names) is escaped before it enters the
page; matching code is wrapped in ``<mark>`` by copydetect's highlighter after escaping.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

import numpy as np

from autograder.similarity import SCORE_NAMES, SCORES, Analysis, Pair, percentile

MAX_CSV_ALL_PAIRS = 300  # up to this many students the CSV lists every pair; beyond, pairs at half a threshold or more

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f3f3f3}.side{display:flex;gap:1em}.side>div{flex:1;min-width:0}
pre{background:#fafafa;border:1px solid #ddd;padding:.6em;overflow-x:auto;font-size:12px}
mark{background:#ffd54f}.pair{border-top:3px solid #888;margin-top:2em;padding-top:.5em}
.note{color:#555}.over{color:#b00020;font-weight:bold}
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def distribution_plot(analysis: Analysis) -> str:
    """Per score, one strip each: the honest pairs of the calibration class, this class's pairs, and the reported
    pairs (red, numbered as in the table), with the threshold as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(SCORES), figsize=(5.2 * len(SCORES), 2.4), sharey=True)
    upper = np.triu_indices(len(analysis.students), 1)
    jitter = np.random.default_rng(0)
    reported = analysis.reported()
    for ax, score in zip(axes, SCORES):
        entry = analysis.thresholds["scores"][score]
        honest = np.asarray(entry["honest"], dtype=float)
        ours = analysis.matrices[score][upper]
        ax.scatter(honest, 2 + jitter.uniform(-0.25, 0.25, len(honest)), s=6, alpha=0.5, color="#1565c0")
        ax.scatter(ours, 1 + jitter.uniform(-0.25, 0.25, len(ours)), s=6, alpha=0.3, color="#616161")
        for rank, pair in enumerate(reported, 1):
            ax.scatter([pair.scores[score]], [0], marker="x", color="#b00020", s=40)
            if rank <= 12:
                ax.annotate(str(rank), (pair.scores[score], 0), textcoords="offset points", xytext=(2, 4), fontsize=7)
        ax.axvline(entry["threshold"], color="#b00020", linestyle="--", linewidth=1)
        ax.set_xlim(min(-0.1, float(np.min(honest, initial=0)) - 0.02), 1.05)
        ax.set_title(f"{score}: reported from {entry['threshold']:.3f}", fontsize=9)
        ax.set_xlabel(SCORE_NAMES[score], fontsize=7)
    axes[0].set_yticks([0, 1, 2], ["reported pairs", "this class", f"honest pairs\n(calibration)"], fontsize=8)
    axes[0].set_ylim(-0.6, 2.6)
    return _png(fig)


def layer_plot(pair: Pair) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in pair.layers if r["weight"]]
    if not rows:
        return ""
    fig, ax = plt.subplots(figsize=(min(14, 2 + 0.22 * len(rows)), 2.6))
    colours = ["#b00020" if r["bit_identical"] else "#ef6c00" if r["identical_after_cast"] else "#1565c0"
               for r in rows]
    ax.bar(range(len(rows)), [r["correlation"] for r in rows], color=colours)
    ax.scatter(range(len(rows)), [r["canonical_correlation"] for r in rows], marker="_", s=80, color="#000")
    ax.set_ylim(-0.2, 1.05)
    ax.set_ylabel("correlation")
    ax.set_xlabel("weight tensors in order (bars as stored, red: bit for bit, orange: equal after a dtype cast; "
                  "black: up to channel signs and order)", fontsize=8)
    ax.axhline(0, color="grey", linewidth=0.5)
    return _png(fig)


def _scores_table(pair: Pair, thresholds: dict) -> str:
    rows = ["<tr><th>score</th><th>this pair</th><th>percentile among honest pairs</th><th>highest honest</th>"
            "<th>reported from</th></tr>"]
    for score in SCORES:
        entry = thresholds["scores"][score]
        value = pair.scores[score]
        over = ' class="over"' if value >= entry["threshold"] else ""
        rows.append(f"<tr><td>{_e(SCORE_NAMES[score])}</td><td{over}>{value:.3f}</td>"
                    f"<td>{percentile(value, entry['honest']):.1f} % of {len(entry['honest'])}</td>"
                    f"<td>{max(entry['honest']):.3f}</td><td>{entry['threshold']:.3f}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _pair_section(rank: int, pair: Pair, thresholds: dict) -> str:
    parts = [f'<div class="pair" id="pair-{rank}"><h3>{rank}. {_e(pair.a)} and {_e(pair.b)}</h3><ul>']
    parts += [f"<li>{_e(reason)}</li>" for reason in pair.reasons]
    parts += [f"<li class='note'>{_e(remark)} (not a reason: the name is the submitter's choice)</li>"
              for remark in pair.remarks]
    parts.append("</ul>")
    parts.append(_scores_table(pair, thresholds))
    if pair.code_match is not None:
        m = pair.code_match
        parts.append(f"<h4>Code: {m.tokens} matching filtered characters; {m.share_a:.0%} of {_e(pair.a)}'s and "
                     f"{m.share_b:.0%} of {_e(pair.b)}'s fingerprinted code (highlighted; the handout never counts)"
                     f"</h4><div class='side'><div><b>{_e(pair.a)}</b><pre>{m.html_a}</pre></div>"
                     f"<div><b>{_e(pair.b)}</b><pre>{m.html_b}</pre></div></div>")
    if pair.layers:
        weights = [r for r in pair.layers if r["weight"]]
        same = sum(r["numel"] for r in pair.layers if r["bit_identical"])
        cast = sum(r["numel"] for r in pair.layers if r["identical_after_cast"] and not r["bit_identical"])
        total = sum(r["numel"] for r in pair.layers)
        magnitudes = sum(r["numel"] * r["same_magnitudes"] for r in pair.layers)
        parts.append(f"<h4>Checkpoints: {len(pair.layers)} tensors aligned by shape and order; {same:,} of {total:,} "
                     f"values bit for bit, {cast:,} more after a dtype cast; about {magnitudes:,.0f} magnitudes "
                     f"equal in tensors aligned so (any sign, any order); weight correlation per tensor:</h4>")
        parts.append(layer_plot(pair))
        if weights:
            worst = sorted(weights, key=lambda r: r["correlation"])[:3]
            parts.append("<p class='note'>least correlated tensors: " + "; ".join(
                f"{_e(r['key_a'])} / {_e(r['key_b'])}: {r['correlation']:.3f}" for r in worst) + "</p>")
    parts.append("</div>")
    return "".join(parts)


def write_report(analysis: Analysis, folder: Path) -> Path:
    """Writes ``report.html`` and ``pairs.csv`` into ``folder``; returns the HTML's path."""
    folder.mkdir(parents=True, exist_ok=True)
    _write_csv(analysis, folder / "pairs.csv")
    th = analysis.thresholds
    n = len(analysis.students)
    reported = analysis.reported()
    head = (f"<!doctype html><html><head><meta charset='utf-8'><title>Similarity: {_e(analysis.assignment)}</title>"
            f"<style>{STYLE}</style></head><body>"
            f"<h1>Similarity report: {_e(analysis.assignment)}</h1>"
            f"<p><b>Evidence for a person to judge, never a penalty by itself.</b> {n} students, {n * (n - 1) // 2:,} "
            f"pairs scored; <b>{len(reported)} pair(s) reported</b>. A pair is reported when a score is above every "
            f"honest pair of the calibration class by a margin of {th.get('margin', '?')}, or when the two checkpoint "
            f"files share what only one save or one training run makes; the name a file was first saved under is "
            f"its submitter's claim, never a reason. Thresholds: {_e(th.get('source', ''))}.</p>")
    notes = [f"<li>{_e(s.name)}: {_e(note)}</li>" for s in analysis.students for note in s.notes]
    body = [head, distribution_plot(analysis)]
    if reported:
        body.append("<h2>Reported pairs, ranked</h2><table><tr><th>#</th><th>students</th><th>evidence</th>"
                    + "".join(f"<th>{_e(s)}</th>" for s in SCORES) + "</tr>")
        for rank, pair in enumerate(reported, 1):
            body.append(f"<tr><td><a href='#pair-{rank}'>{rank}</a></td><td>{_e(pair.a)} / {_e(pair.b)}</td>"
                        f"<td>{len(pair.reasons)} item(s)</td>"
                        + "".join(f"<td>{pair.scores[s]:.3f}</td>" for s in SCORES) + "</tr>")
        body.append("</table>")
        body += [_pair_section(rank, pair, th) for rank, pair in enumerate(reported, 1)]
    else:
        body.append("<h2>No pair is reported</h2><p>No score is above what honest pairs reach, and no two checkpoint "
                    "files share a save or a training run.</p>")
    if notes:
        body.append("<h2>Notes on single submissions</h2><p class='note'>Files that could not be compared, and what a "
                    "file claims on its own (such as the name it was first saved under): never evidence of a pair."
                    "</p><ul>" + "".join(notes) + "</ul>")
    body.append(f"<p class='note'>pairs.csv beside this page lists the scores of "
                f"{'every pair' if n <= MAX_CSV_ALL_PAIRS else 'the pairs at half a threshold or more'}.</p>"
                "</body></html>")
    path = folder / "report.html"
    path.write_text("".join(body), encoding="utf-8")
    return path


def _write_csv(analysis: Analysis, path: Path) -> None:
    names = [s.name for s in analysis.students]
    reported = {(p.a, p.b): p for p in analysis.reported()}
    limits = {s: analysis.thresholds["scores"][s]["threshold"] for s in SCORES}
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student_a", "student_b", "reported", *SCORES,
                         *(f"{s}_percentile_honest" for s in SCORES), "evidence"])
        mask = np.ones((len(names), len(names)), dtype=bool)
        if len(names) > MAX_CSV_ALL_PAIRS:
            mask = np.zeros_like(mask)
            for s in SCORES:
                mask |= analysis.matrices[s] >= limits[s] / 2
        rows = []
        for i, j in zip(*np.nonzero(np.triu(mask, 1))):
            a, b = names[i], names[j]
            values = [float(analysis.matrices[s][i, j]) for s in SCORES]
            pair = reported.get((a, b))
            rows.append([a, b, "yes" if pair else "no", *(f"{v:.4f}" for v in values),
                         *(f"{percentile(v, analysis.thresholds['scores'][s]['honest']):.1f}"
                           for v, s in zip(values, SCORES)),
                         " | ".join(pair.reasons) if pair else ""])
        rows.sort(key=lambda r: (r[2] != "yes", -max(float(x) for x in r[3:3 + len(SCORES)])))
        writer.writerows(rows)
