"""The scoring half of ``bench/similarity_calibration.py``: the honest class and its planted copies as course folders,
every pair scored by the real tool, distributions and thresholds written."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from common import ROOT, print_table, write_json
from honest_students import Student, honest_class, namespace, student_notebook
from similarity_calibration import ASSIGNMENT, cache_dir, seed_of, training_key

# The margin above the highest honest pair, per score (scores lie in [0, 1]).
MARGIN = 0.10
PLANTED = ("renamed_reformatted", "checkpoint_copied", "checkpoint_finetuned_1_epoch", "checkpoint_resaved")


def _fine_tuned(original: Student, source: Path) -> Path:
    """The original's checkpoint, loaded into the original's code and trained for one more epoch of the QUICK
    recipe with another seed (the copier's run), saved as the notebook saves it. Cached."""
    import torch

    from course_lib.data import load_synthetic
    from course_lib.models import count_parameters
    from course_lib.submission import save_submission
    from course_lib.train import evaluate, fit
    from course_lib.train.checkpoint import load_checkpoint
    from course_lib.train.recipes import QUICK

    out = cache_dir() / f"finetune-{source.name}"
    if (out / f"{ASSIGNMENT}_checkpoint.pt").is_file():
        return out
    torch.set_num_threads(1)
    train, val = load_synthetic("train"), load_synthetic("val")
    payload = load_checkpoint(source / f"{ASSIGNMENT}_checkpoint.pt")
    model = namespace(original)["SegmentationModel"](**payload["model_kwargs"])
    model.load_state_dict(payload["state_dict"])
    cfg = replace(QUICK.train, num_epochs=1, seed=4242, progress=False, max_seconds=None)
    start = time.perf_counter()
    history = fit(model, train, val, cfg, log=None)
    final = evaluate(model, val, num_threads=1)
    metrics = dict(miou=final.miou, pixel_accuracy=final.pixel_accuracy, num_parameters=count_parameters(model),
                   training_minutes=(time.perf_counter() - start) / 60)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir()))
    save_submission(model, payload["model_kwargs"], metrics, tmp, ASSIGNMENT, history=history, data=val, mode="QUICK")
    tmp.replace(out)
    return out


def build_course(root: Path, students: list[Student], regime: str, planted: bool) -> tuple[object, dict]:
    """A course folder with the class handed in; returns (course, planted copier → original)."""
    import nbformat
    import torch

    from autograder.checks import get_assignment
    from autograder.course import Course
    from autograder.similarity.plant import disguise_notebook

    assignment = get_assignment(ASSIGNMENT)
    release = ROOT / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    (root / "release" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(release, root / "release" / ASSIGNMENT)
    present = []
    for i, student in enumerate(students):
        folder = root / "submitted" / student.name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(student_notebook(release, student), folder / f"{ASSIGNMENT}.ipynb")
        trained = cache_dir() / training_key(student, seed_of(regime, i))
        if not (trained / f"{ASSIGNMENT}_checkpoint.pt").is_file():
            continue  # not trained (yet): the code is compared, the checkpoint scores leave this student out
        for name in (f"{ASSIGNMENT}_checkpoint.pt", f"{ASSIGNMENT}_results.json"):
            shutil.copy(trained / name, folder / name)
        present.append((i, student, trained))
    copies = {}
    if planted and len(present) >= 2:
        extra = honest_class(len(students) + 4)[len(students):]  # copiers' own code, for the checkpoint copies
        (_, s0, t0), (_, s1, t1) = present[:2]  # the originals: the first two students of the class
        plans = {
            "copy_renamed": (s1, None, None),
            "copy_ckpt": (s1, extra[0], t1),
            "copy_finetuned": (s0, extra[1], _fine_tuned(s0, t0)),
            "copy_resaved": (s0, extra[2], t0),
        }
        for copier, (original, own_code, files) in plans.items():
            folder = root / "submitted" / copier / ASSIGNMENT
            folder.mkdir(parents=True)
            nb = (disguise_notebook(student_notebook(release, original), set(assignment.code_cells))
                  if own_code is None else student_notebook(release, own_code))
            nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
            if files is not None:
                for name in (f"{ASSIGNMENT}_checkpoint.pt", f"{ASSIGNMENT}_results.json"):
                    shutil.copy(files / name, folder / name)
            if copier == "copy_resaved":
                first = folder / f"{original.name}_model.pt"
                torch.save(torch.load(folder / f"{ASSIGNMENT}_checkpoint.pt", weights_only=True), first)
                first.replace(folder / f"{ASSIGNMENT}_checkpoint.pt")
            copies[copier] = original.name
    return Course(root), copies


def _summary(values: list[float]) -> dict:
    v = np.asarray(values, dtype=float)
    if not len(v):
        return {"pairs": 0}
    return {"pairs": int(len(v)), "min": round(float(v.min()), 4), "median": round(float(np.median(v)), 4),
            "p95": round(float(np.percentile(v, 95)), 4), "max": round(float(v.max()), 4)}


NEVER = {"scores": {s: {"threshold": 2.0, "honest": [0.0]} for s in ("code", "identical", "layers")}}


def score_regime(students: list[Student], regime: str, thresholds: dict | None) -> dict:
    """Every pair of the regime's class scored; honest distributions, facts among honest pairs, planted scores,
    and (with ``thresholds``) which pairs the tool reports."""
    from autograder.similarity import SCORES, analyse

    with tempfile.TemporaryDirectory() as tmp:
        course, copies = build_course(Path(tmp), students, regime, planted=True)
        analysis = analyse(course, ASSIGNMENT, thresholds or NEVER)
    names = [s.name for s in analysis.students]
    honest = [i for i, n in enumerate(names) if n not in copies]
    trained = [i for i in honest if analysis.students[i].checkpoint_path is not None]
    pairs = {"code": [(i, j) for x, i in enumerate(honest) for j in honest[x + 1:]]}
    pairs["identical"] = pairs["layers"] = [(i, j) for x, i in enumerate(trained) for j in trained[x + 1:]]
    out = {"students": len(honest), "trained_students": len(trained), "honest_pairs": len(pairs["code"]),
           "trained_pairs": len(pairs["layers"]),
           "distributions": {s: sorted(round(float(analysis.matrices[s][i, j]), 5) for i, j in pairs[s])
                             for s in SCORES}}
    out["summary"] = {s: _summary(out["distributions"][s]) for s in SCORES}
    shown = {(p.a, p.b): p for p in analysis.pairs}
    honest_names = {names[i] for i in honest}
    out["honest_pairs_with_facts"] = [{"pair": [p.a, p.b], "facts": p.facts} for p in analysis.pairs
                                      if p.a in honest_names and p.b in honest_names and p.facts]
    out["planted"] = {}
    for copier, original in copies.items():
        i, j = names.index(copier), names.index(original)
        pair = shown.get(tuple(sorted((copier, original))))
        out["planted"][copier] = {"original": original,
                                  **{s: round(float(analysis.matrices[s][i, j]), 4) for s in SCORES},
                                  "facts": pair.facts if pair else [],
                                  "reported": bool(pair and pair.reported) if thresholds else None,
                                  "reasons": pair.reasons if pair and thresholds else []}
    if thresholds:
        out["reported_pairs"] = [[p.a, p.b] for p in analysis.reported()]
        out["reported_honest_pairs"] = [[p.a, p.b, p.reasons] for p in analysis.reported()
                                        if p.a in honest_names and p.b in honest_names]
    return out


def thresholds_from(result: dict, source: str) -> dict:
    """Each score's threshold: the highest honest pair of the regime plus ``MARGIN``, with the distribution."""
    scores = {}
    for score, values in result["distributions"].items():
        highest = max(values)
        scores[score] = {"threshold": round(min(highest + MARGIN, 0.999), 4), "honest_max": highest,
                         "honest_median": round(float(np.median(values)), 4),
                         "students": result["students"] if score == "code" else result["trained_students"],
                         "honest": values}
    return {"source": source, "margin": MARGIN, "scores": scores}


def score_calibration(students: list[Student], regimes: tuple[str, ...], write: bool) -> None:
    from autograder.similarity import THRESHOLDS, load_thresholds

    first = {regime: score_regime(students, regime, None) for regime in regimes}
    calibration = first.get("seeds") or next(iter(first.values()))
    when = time.strftime("%Y-%m-%d")
    table = thresholds_from(calibration, f"bench/similarity_calibration.py ({when}): code from "
                                         f"{calibration['students']} honest students ({calibration['honest_pairs']} "
                                         f"pairs), checkpoints from {calibration['trained_students']} trained with "
                                         f"seeds of their own ({calibration['trained_pairs']} pairs); threshold = "
                                         f"highest honest pair + {MARGIN}")
    if write:
        THRESHOLDS.write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote {THRESHOLDS.relative_to(ROOT)}")
    thresholds = table if write else load_thresholds()
    final = {regime: score_regime(students, regime, thresholds) for regime in regimes}
    rows = []
    for regime, result in final.items():
        for score, summary in result["summary"].items():
            rows.append({"regime": regime, "score": score, **summary,
                         "threshold": thresholds["scores"][score]["threshold"]})
    print_table("honest pairs: each score's distribution", rows)
    planted_rows = [{"regime": regime, "copy": copier, **{k: v for k, v in p.items() if k not in ("reasons", "facts")},
                     "facts": len(p["facts"])}
                    for regime, result in final.items() for copier, p in result["planted"].items()]
    print_table("planted copies", planted_rows)
    for regime, result in final.items():
        print(f"{regime}: {len(result['reported_honest_pairs'])} honest pair(s) reported; "
              f"honest pairs sharing a file fact: {len(result['honest_pairs_with_facts'])}")
    write_json("similarity_calibration", {"margin": MARGIN, "thresholds": {s: e["threshold"] for s, e in
                                                                           thresholds["scores"].items()},
                                          "regimes": final})
