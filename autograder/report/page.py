"""The class report as one self-contained HTML page: tables written here, plots by matplotlib embedded as PNG data.

Everything a student controls (their id, their name in the roster, every message a check wrote about their code)
is escaped before it enters the page (``_e``). A figure the tests compare carries ``data-key`` (what it is) on its
table cell, so a test reads the page's numbers without parsing its layout.
"""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from autograder.report.data import AssignmentReport, ItemRow  # noqa: E402

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1300px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
section.assignment{border-top:3px solid #888;margin-top:2em}.note{color:#555}.bad{color:#b00020}
tr.part td:first-child{padding-left:2em;color:#444}nav a{margin-right:1em}.side{display:flex;gap:1em;flex-wrap:wrap}.msg{font-size:90%;max-width:60em}
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _num(value, key: str, fmt: str = "{:g}") -> str:
    """A table cell holding a number (blank when there is none), tagged ``data-key`` for the tests."""
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else fmt.format(value)
    return f'<td class="num" data-key="{_e(key)}">{text}</td>'


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def totals_plot(report: AssignmentReport) -> str:
    """The distribution of totals (the gradebook's: automatic and manual points) of the students who handed in."""
    graded = report.table[report.table["status"] != "not submitted"]
    top = float(report.table["max"].iloc[0])
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    ax.hist(graded["total"], bins=min(20, max(5, len(graded))), range=(0, top), color="tab:blue", edgecolor="white")
    if report.summary["median"] is not None:
        ax.axvline(report.summary["median"], color="k", linestyle="--", linewidth=1, label="median")
        ax.legend(fontsize=8)
    ax.set(xlabel=f"total points (of {top:g})", ylabel="students", title=f"{report.name}: totals")
    return _png(fig)


def miou_plot(report: AssignmentReport, tiers) -> str | None:
    """The recomputed mIoU (the figure the tiers are judged on) with the term's tier thresholds drawn on it."""
    values = [r.miou.effective for r in report.records if r.miou is not None]
    if not values:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    ax.hist(values, bins=20, range=(0, 1), color="tab:green", edgecolor="white")
    for (name, threshold), color in zip(tiers.as_dict().items(), ("#f9a825", "#ef6c00", "#b00020")):
        ax.axvline(threshold, color=color, linestyle="--", linewidth=1.2, label=f"{name} {threshold:g}")
    ax.legend(fontsize=8)
    ax.set(xlabel="recomputed mIoU (judged)", ylabel="students", title=f"{report.name}: mIoU and the tiers")
    return _png(fig)


def items_plot(items: list[ItemRow]) -> str | None:
    """The share of students who earned each check and each part: the bars the class failed are the short ones."""
    if not items:
        return None
    labels = [item.check if item.part is None else f"  {item.check} / {item.part}" for item in items]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(items) + 0.8))
    colors = ["tab:blue" if item.part is None else "tab:gray" for item in items]
    ax.barh(range(len(items)), [item.share for item in items], color=colors)
    ax.set_yticks(range(len(items)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="share of students who earned every point")
    return _png(fig)


def times_plot(report: AssignmentReport) -> str | None:
    seconds = [r.timings.judge + r.timings.render for r in report.records]
    if not seconds:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 2.5))
    ax.hist(seconds, bins=min(20, max(5, len(seconds))), color="tab:purple", edgecolor="white")
    ax.set(xlabel="seconds per student (judge + rendering)", ylabel="students", title=f"{report.name}: grading time")
    return _png(fig)


def _student(report: AssignmentReport, student: str) -> str:
    name = report.names.get(student)
    return _e(student) + (f' <span class="note">({_e(name)})</span>' if name else "")


def totals_section(report: AssignmentReport, tiers) -> str:
    s, a = report.summary, report.name
    rows = "".join(f"<tr><th>{label}</th>{_num(s[key], f'{a}/summary/{key}', fmt)}</tr>" for label, key, fmt in (
        ("students in the gradebook", "students", "{:d}"), ("handed in", "submitted", "{:d}"),
        ("points possible", "max_points", "{:g}"), ("mean", "mean", "{:.2f}"), ("median", "median", "{:.2f}"),
        ("standard deviation", "std", "{:.2f}"), ("lowest", "min", "{:g}"), ("highest", "max", "{:g}")))
    tier_rows = "".join(f"<tr><th>{_e(label)}</th>{_num(n, f'{a}/tiers/{label}', '{:d}')}</tr>"
                        for label, n in s["tier_counts"].items())
    miou = miou_plot(report, tiers)
    thresholds = ", ".join(f"{name} {value:g}" for name, value in tiers.as_dict().items())
    return (f'<h3 id="totals-{_e(a)}">Totals</h3><div class="side">{totals_plot(report)}'
            + (miou or '<p class="note">Not graded on data: no mIoU.</p>') + "</div>"
            + f"<table>{rows}</table>"
            + (f"<p>Students who reached each tier (thresholds from the term's declaration: {thresholds}):</p>"
               f"<table>{tier_rows}</table>" if tier_rows else ""))


def items_section(report: AssignmentReport) -> str:
    a = report.name
    crashed = report.crashed
    head = ("<tr><th>check / part</th><th>points</th><th>earned by</th><th>share</th><th>mean points</th>"
            "<th>most common failure messages (count)</th></tr>")
    rows = []
    for item in report.items:
        key = f"{a}/items/{item.check}" + (f"/{item.part}" if item.part else "")
        failures = "<br>".join(f'<span class="msg">{_e(m)}</span> ({n})' for m, n in item.failures)
        label = _e(item.check) if item.part is None else _e(item.part)
        rows.append(f'<tr class="{"check" if item.part is None else "part"}"><td>{label}</td>'
                    + _num(item.max_points, key + "/max") + _num(item.earned, key + "/earned", "{:d}")
                    + _num(item.share, key + "/share", "{:.0%}") + _num(item.mean_points, key + "/mean", "{:.2f}")
                    + f"<td>{failures}</td></tr>")
    note = (f'<p class="note">Of {report.items[0].students if report.items else 0} graded records'
            + (f"; left out, because grading itself failed (grade again): {_e(', '.join(crashed))}" if crashed else "")
            + ".</p>")
    plot = items_plot(report.items)
    return (f'<h3 id="items-{_e(a)}">Item analysis: every check and every part</h3>{note}'
            + (plot or "") + f"<table>{head}{''.join(rows)}</table>")


def written_section(report: AssignmentReport) -> str:
    a, w = report.name, report.written
    if w.empty:
        return f'<h3 id="written-{_e(a)}">Written answers</h3><p class="note">No written answers in the gradebook.</p>'
    head = ("<tr><th>question</th><th>points</th><th>graded by a TA</th><th>mean manual score</th>"
            "<th>still to grade</th><th>left as released (0 by nbgrader)</th></tr>")
    rows = []
    for question, group in w.groupby("question", sort=True):
        manual = group["manual_score"].dropna().astype(float)
        unanswered = group["manual_score"].isna() & (group["auto_score"].fillna(-1) == 0) & ~group["needs_manual_grade"]
        key = f"{a}/written/{question}"
        rows.append(f"<tr><td>{_e(question)}</td>" + _num(float(group["max_points"].iloc[0]), key + "/max")
                    + _num(len(manual), key + "/graded", "{:d}")
                    + _num(float(manual.mean()) if len(manual) else None, key + "/mean", "{:.2f}")
                    + _num(int(group["needs_manual_grade"].sum()), key + "/to_grade", "{:d}")
                    + _num(int(unanswered.sum()), key + "/unanswered", "{:d}") + "</tr>")
    return (f'<h3 id="written-{_e(a)}">Written answers (manual scores from the gradebook)</h3>'
            f"<table>{head}{''.join(rows)}</table>")


def late_section(report: AssignmentReport, policy: str | None, extensions: pd.DataFrame | None) -> str:
    a, late = report.name, report.lateness
    due = f"due {report.duedate:%Y-%m-%d %H:%M} UTC" if report.duedate else "no due date in the gradebook"
    parts = [f'<h3 id="late-{_e(a)}">Lateness and extensions</h3>',
             f"<p>{_e(due)}; late policy: "
             + (_e(policy) if policy else '<span class="note">no late policy declared</span>') + "</p>"]
    if not late.empty:
        shown = late[(late["seconds_late"] > 0) | (late["extension_hours"] > 0) | (late["penalty"] > 0)
                     | (late["record_late"] != "")]
        parts.append(f'<p><span data-key="{_e(a)}/late/count">{int((late["seconds_late"] > 0).sum())}</span> of '
                     f"{len(late)} submissions late.</p>")
        if not shown.empty:
            rows = "".join(
                f"<tr><td>{_student(report, r.student)}</td><td>{_e(r.submitted or '')}</td>"
                + _num(r.extension_hours, f"{a}/late/{r.student}/extension_hours", "{:g}")
                + _num(r.seconds_late / 3600, f"{a}/late/{r.student}/hours_late", "{:.2f}")
                + _num(r.penalty, f"{a}/late/{r.student}/penalty") + f"<td>{_e(r.record_late)}</td></tr>"
                for r in shown.itertuples())
            parts.append("<table><tr><th>student</th><th>submitted (UTC)</th><th>extension (hours)</th>"
                         f"<th>hours late</th><th>late penalty (points)</th><th>record</th></tr>{rows}</table>")
    if extensions is not None:
        parts.append("<p>Extensions (CSV):</p>" + extensions.to_html(index=False, escape=True, border=0))
    return "".join(parts)


def flags_section(report: AssignmentReport) -> str:
    a = report.name
    flagged = [r for r in report.records if r.flagged]
    if not flagged:
        return f'<h3 id="flags-{_e(a)}">Flagged submissions</h3><p class="note">None.</p>'
    rows = "".join(
        f'<tr data-key="{_e(a)}/flagged/{_e(r.student)}"><td>{_student(report, r.student)}</td><td>{_e(r.status)}</td>'
        f"<td>{'<br>'.join(_e(p) for p in r.problems)}</td>"
        f"<td class=\"bad\">{'<br>'.join(_e(f) for f in r.flags)}</td></tr>" for r in flagged)
    return (f'<h3 id="flags-{_e(a)}">Flagged submissions ({len(flagged)})</h3>'
            "<table><tr><th>student</th><th>status</th><th>problems</th><th>suspicions</th></tr>"
            f"{rows}</table>")


def times_section(report: AssignmentReport) -> str:
    a = report.name
    rows = "".join(
        f"<tr><td>{_student(report, r.student)}</td>" + _num(r.timings.judge, f"{a}/time/{r.student}/judge", "{:.2f}")
        + _num(r.timings.render, f"{a}/time/{r.student}/render", "{:.2f}")
        + f"<td>{_e(r.sandbox.get('worker', ''))}</td></tr>" for r in report.records)
    plot = times_plot(report)
    return (f'<h3 id="time-{_e(a)}">Grading time per student</h3>' + (plot or "")
            + "<table><tr><th>student</th><th>judge (s)</th><th>rendering (s)</th><th>worker</th></tr>"
            f"{rows}</table>")


def assignment_section(report: AssignmentReport, tiers, policy: str | None, extensions) -> str:
    return (f'<section class="assignment" id="assignment-{_e(report.name)}"><h2>{_e(report.name)}</h2>'
            + totals_section(report, tiers) + items_section(report) + written_section(report)
            + late_section(report, policy, extensions) + flags_section(report) + times_section(report) + "</section>")


def page(title: str, setting: str, reports: list[AssignmentReport], missing: list[str], tiers, policy,
         extensions) -> str:
    nav = "".join(f'<a href="#assignment-{_e(r.name)}">{_e(r.name)}</a>' for r in reports)
    body = "".join(assignment_section(r, tiers, policy, extensions) for r in reports)
    absent = (f'<p class="note">No students in the gradebook yet for: {_e(", ".join(missing))}.</p>' if missing else "")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1><p>{_e(setting)}</p><nav>{nav}</nav>{absent}"
            f"{body}</body></html>")
