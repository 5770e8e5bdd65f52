"""The term's declared setting, its secret, and the held-out data drawn from it (fast: no sandbox, no training)."""

import os
import re
import stat
from pathlib import Path

import pytest
import torch

from autograder.heldout import grading_data, transformed_copies
from autograder.term import GradedSetting, TermError, ensure_term_secret, secret_generator, term_secret
from course_lib.data import DataSource, data_record, load_synthetic, make_synthetic
from course_lib.data.voc import DataError

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid_seg96x128.npz"


def write_config(root, text):
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    (root / "course.toml").write_text(text)
    return root


def test_the_repositorys_course_declares_the_synthetic_default(repo):
    assert GradedSetting.read(repo) == GradedSetting(DataSource("synthetic"), (64, 64), "QUICK")


def test_a_declared_setting_is_read_with_its_data_size_and_mode(tmp_path):
    write_config(tmp_path, '[grading]\ndata = "camvid:~/camvid.npz"\nimage_size = [96, 128]\nmode = "FULL"\n')
    setting = GradedSetting.read(tmp_path)
    assert setting.data == DataSource("camvid", Path("~/camvid.npz").expanduser())
    assert (setting.image_size, setting.mode) == ((96, 128), "FULL")
    assert setting.describe() == "camvid at 96x128, FULL mode"


@pytest.mark.parametrize("text, fragment", [
    ('[grading]\ndata = "imagenet"\n', "unknown data 'imagenet'"),
    ('[grading]\ndata = "voc"\n', "needs its location"),
    ('[grading]\nmode = "FAST"\n', "mode 'FAST' is not one of"),
    ('[grading]\nimage_size = [64]\n', "a side or (height, width)"),
    ("[grading\n", "course.toml"),
])
def test_a_malformed_course_config_says_what_is_wrong(tmp_path, text, fragment):
    write_config(tmp_path, text)
    with pytest.raises(TermError, match=re.escape(fragment)):
        GradedSetting.read(tmp_path)


def test_a_results_file_made_for_another_setting_is_named_and_one_made_for_this_one_is_not():
    voc = GradedSetting(DataSource("voc", Path("/data/voc")), (64, 64), "FULL")
    quick = data_record(load_synthetic("val", num_images=2))
    message = voc.mismatch("QUICK", quick)
    assert "made for synthetic at 64x64, QUICK mode" in message and "grades voc at 64x64, FULL mode" in message
    assert voc.mismatch("FULL", {**quick, "dataset": "voc"}) is None
    assert voc.mismatch(None, None) is None  # a results file that does not say is not accused


def test_a_term_without_a_secret_or_with_a_published_one_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("SEGMENTATION_TERM_SECRET", raising=False)
    with pytest.raises(TermError, match="run `python -m autograder release`"):
        term_secret(tmp_path)
    monkeypatch.setenv("SEGMENTATION_TERM_SECRET", "20261121")
    with pytest.raises(TermError, match="a published value"):
        term_secret(tmp_path)
    monkeypatch.setenv("SEGMENTATION_TERM_SECRET", "short")
    with pytest.raises(TermError, match="too short"):
        term_secret(tmp_path)


def test_release_draws_a_secret_readable_by_its_owner_only_and_keeps_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SEGMENTATION_TERM_SECRET", raising=False)
    path = ensure_term_secret(tmp_path)
    first = term_secret(tmp_path)
    assert path == tmp_path / "grading" / "term_secret.txt" and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first) == 32 and ensure_term_secret(tmp_path) == path and term_secret(tmp_path) == first
    assert not torch.equal(secret_generator(first, "heldout-scenes").get_state(),
                           secret_generator(first, "transformed-copies").get_state())


def test_a_judge_run_without_a_course_finds_the_course_of_the_notebook_and_its_secret(tmp_path, monkeypatch):
    """An instructor's run of a source notebook (``make release``, ``nbgrader validate``) grades with the secret of
    the course the notebook is in, without any variable set."""
    from autograder.judge import default_course_root

    monkeypatch.delenv("SEGMENTATION_TERM_SECRET", raising=False)
    monkeypatch.delenv("SEGMENTATION_COURSE_ROOT", raising=False)
    course = write_config(tmp_path / "course", "")
    (course / "source" / "segmentation_hw").mkdir(parents=True)
    ensure_term_secret(course)
    assert default_course_root(course / "source" / "segmentation_hw") == course.resolve()
    assert term_secret(default_course_root(course / "source" / "segmentation_hw"))
    monkeypatch.setenv("SEGMENTATION_COURSE_ROOT", str(tmp_path))
    assert default_course_root(course / "source" / "segmentation_hw") == tmp_path


def test_the_synthetic_held_out_scenes_follow_the_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENTATION_TERM_SECRET", "first-secret-of-a-term")
    first = grading_data(tmp_path).heldout
    monkeypatch.setenv("SEGMENTATION_TERM_SECRET", "another-secret-of-a-term")
    second = grading_data(tmp_path).heldout
    assert first.images.shape == second.images.shape == (500, 3, 64, 64)
    assert not torch.equal(first.images, second.images)
    assert grading_data(tmp_path).heldout_kind == "held-out scenes"


def test_transformed_copies_keep_shapes_and_labels_and_differ_from_every_original():
    data = load_synthetic("val", num_images=40)
    copies = transformed_copies(data, secret_generator("secret-5", "transformed-copies"))
    assert copies.images.shape == data.images.shape and copies.images.dtype == torch.uint8
    assert copies.masks.shape == data.masks.shape and copies.class_names == data.class_names
    assert set(copies.masks.unique().tolist()) <= set(data.masks.unique().tolist())  # nearest: no blended labels
    originals = {img.numpy().tobytes() for img in data.images}
    assert not any(img.numpy().tobytes() in originals for img in copies.images)
    assert torch.equal(transformed_copies(data, secret_generator("secret-5", "transformed-copies")).images, copies.images)
    assert not torch.equal(transformed_copies(data, secret_generator("secret-6", "transformed-copies")).images, copies.images)


def test_grading_on_public_data_draws_transformed_copies_of_it(tmp_path):
    if not CAMVID.is_file():
        pytest.skip(f"no CamVid file at {CAMVID}")
    setting = GradedSetting(DataSource("camvid", CAMVID), (96, 128), "QUICK")
    data = grading_data(tmp_path, setting)
    assert data.heldout_kind.startswith("secretly transformed copies") and len(data.heldout) == len(data.public) == 101


def test_missing_declared_data_says_where_it_was_looked_for(tmp_path):
    setting = GradedSetting(DataSource("voc", tmp_path / "nowhere"), (64, 64), "FULL")
    with pytest.raises(DataError, match="no PASCAL VOC 2012 data found"):
        grading_data(tmp_path, setting)


@pytest.mark.slow
def test_a_source_notebook_executed_away_from_its_course_still_judges_with_the_courses_secret(tmp_path, monkeypatch):
    """``release`` trains the reference in a copy of the source folder outside the course: the kernel is told the
    course (``make demo`` stopped here once, when only the test suite's own secret variable made it work)."""
    import nbformat

    from autograder.release import _execute

    monkeypatch.delenv("SEGMENTATION_TERM_SECRET", raising=False)
    monkeypatch.delenv("SEGMENTATION_COURSE_ROOT", raising=False)
    course = write_config(tmp_path / "course", "")
    ensure_term_secret(course)
    away = tmp_path / "elsewhere"
    away.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from pathlib import Path\nfrom autograder.judge import default_course_root\nfrom autograder.term import term_secret\n"
        f"assert default_course_root(Path('.')) == Path({str(course)!r})\nassert term_secret(default_course_root(Path('.')))")])
    nbformat.write(nb, away / "copy.ipynb")
    _execute(away / "copy.ipynb", course)
    assert "SEGMENTATION_COURSE_ROOT" not in os.environ


def test_the_tiers_are_declared_once_in_course_toml_and_default_to_the_homeworks(tmp_path):
    from course_lib.term import Tiers
    from course_lib.train.recipes import MIOU_TIERS

    assert GradedSetting().tiers.as_dict() == MIOU_TIERS
    write_config(tmp_path, '[grading]\ntiers = { target = 0.2, good = 0.3, excellent = 0.45 }\n')
    assert GradedSetting.read(tmp_path).tiers == Tiers(0.2, 0.3, 0.45)
    write_config(tmp_path, '[grading]\ntiers = [0.1, 0.2, 0.3]\n')
    assert GradedSetting.read(tmp_path).tiers.as_dict() == {"target": 0.1, "good": 0.2, "excellent": 0.3}


@pytest.mark.parametrize("tiers, fragment", [
    ("{ target = 0.3, good = 0.2, excellent = 0.4 }", "tiers must rise strictly"),
    ("{ target = 0.1, good = 0.2 }", "tiers names ['target', 'good', 'excellent']"),
    ("[0.1, 0.2]", "a list of three thresholds"),
    ("[0.1, 0.2, 1.5]", "between 0 and 1"),
])
def test_malformed_tiers_say_what_is_wrong(tmp_path, tiers, fragment):
    write_config(tmp_path, f"[grading]\ntiers = {tiers}\n")
    with pytest.raises(TermError, match=re.escape(fragment)):
        GradedSetting.read(tmp_path)


def test_the_tier_checks_judge_with_the_terms_thresholds():
    from autograder.assignment import CheckContext
    from autograder.checks.segmentation_hw import CHECKS
    from autograder.judge import run_check
    from course_lib.term import Tiers

    miou = {"public": 0.38, "heldout": 0.37, "effective": 0.37, "heldout_kind": "held-out scenes"}
    cells = {"segmentation_model": "class SegmentationModel(nn.Module):\n    def forward(self, x):\n        return x\n"}
    default = run_check("test_miou_excellent", CHECKS["test_miou_excellent"], {}, CheckContext(cells=cells, miou=miou))
    assert default.passed and default.message.endswith(">= 0.35")
    declared = run_check("test_miou_excellent", CHECKS["test_miou_excellent"], {},
                         CheckContext(cells=cells, miou=miou, tiers=Tiers(0.2, 0.3, 0.4)))
    assert not declared.passed and "below 0.4" in declared.message


def test_the_notebooks_read_the_tiers_of_the_course_they_run_in(tmp_path, monkeypatch):
    """``course_lib.term``: the instructor's kernel (SEGMENTATION_COURSE_ROOT), a course folder above the working
    directory, else the defaults (a student's wheel carries its own: tests/test_bundle.py)."""
    from course_lib.term import Tiers, announced, tiers

    monkeypatch.delenv("SEGMENTATION_COURSE_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tiers() == Tiers()
    course = write_config(tmp_path / "course", '[grading]\ndata = "voc:/srv/voc64.npz"\nmode = "FULL"\n'
                                               'tiers = [0.2, 0.3, 0.4]\n')
    (course / "source" / "segmentation_hw").mkdir(parents=True)
    monkeypatch.chdir(course / "source" / "segmentation_hw")
    assert tiers() == Tiers(0.2, 0.3, 0.4)
    assert (announced().data, announced().data_file, announced().mode) == ("voc", "voc64.npz", "FULL")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEGMENTATION_COURSE_ROOT", str(course))
    assert tiers().excellent == 0.4 and announced().data_spec("/content") == "voc:/content/voc64.npz"


def _seeded_by_manual_seed(state: torch.Tensor) -> bool:
    """Whether a CPU generator's Mersenne Twister words are those ``manual_seed`` writes: word 0 is the seed's low
    32 bits and every next word follows from the one before (the reference ``init_genrand``)."""
    words = [int(w) for w in state[24:24 + 8 * 624].view(torch.int64)]
    return all(words[i] == (1812433253 * (words[i - 1] ^ (words[i - 1] >> 30)) + i) & 0xFFFFFFFF
               for i in range(1, 624))


def test_held_out_data_is_drawn_from_a_state_no_32_bit_seed_reaches():
    """Round 4: torch's ``manual_seed`` keeps the low 32 bits of a seed, so a held-out set drawn from a seeded
    generator had 2^32 possibilities and a leaked fingerprint found the seed in a core-hour. The term's generator
    holds 624 words drawn from the secret: no seed produces that state, and the same secret draws the same data."""
    assert _seeded_by_manual_seed(torch.Generator().manual_seed(2**62 + 12345).get_state())  # the check is sound
    words = slice(24, 24 + 8 * 624)  # the Mersenne Twister's words in get_state()
    assert torch.equal(torch.Generator().manual_seed(2**62 + 12345).get_state()[words],
                       torch.Generator().manual_seed(12345).get_state()[words])  # ... and torch drops the high bits
    assert torch.equal(torch.rand(8, generator=torch.Generator().manual_seed(2**62 + 12345)),
                       torch.rand(8, generator=torch.Generator().manual_seed(12345)))
    secret = "0123456789abcdef0123456789abcdef"
    state = secret_generator(secret, "heldout-scenes").get_state()
    assert not _seeded_by_manual_seed(state)
    assert torch.equal(state, secret_generator(secret, "heldout-scenes").get_state())
    assert not torch.equal(state, secret_generator(secret[:-1] + "0", "heldout-scenes").get_state())
    first = make_synthetic(3, size=16, generator=secret_generator(secret, "heldout-scenes"))
    again = make_synthetic(3, size=16, generator=secret_generator(secret, "heldout-scenes"))
    assert torch.equal(first.images, again.images) and torch.equal(first.masks, again.masks)
    assert not torch.equal(first.images, make_synthetic(3, size=16, generator=secret_generator("x" * 32, "heldout-scenes")).images)


def test_the_synthetic_terms_held_out_scenes_are_the_secret_generators(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENTATION_TERM_SECRET", "0123456789abcdef0123456789abcdef")
    heldout = grading_data(tmp_path, GradedSetting(image_size=(16, 16))).heldout
    expected = make_synthetic(len(heldout), size=16, generator=secret_generator("0123456789abcdef0123456789abcdef",
                                                                                "heldout-scenes"))
    assert torch.equal(heldout.images, expected.images) and torch.equal(heldout.masks, expected.masks)
