"""``make bench-gpu`` holds on an offline GPU node that has only PyTorch, torchvision, pandas, matplotlib and tqdm:
its training part runs from a checkout with ``PYTHONPATH=.``, its grading part says what is missing, and without a
GPU it refuses plainly. (The CUDA figures themselves come from running it on a GPU: see the README.)"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Everything the node lacks: the grader's and the notebook's packages and the test tools.
BLOCK = '''
import importlib.abc, sys
MISSING = {"nbgrader", "nbformat", "nbconvert", "jupyterlab", "jupyter_server", "notebook", "ipywidgets", "traitlets",
           "pytest", "yaml", "torchmetrics", "sqlalchemy"}
class Offline(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in MISSING:
            raise ImportError(f"No module named {name!r} (not on this GPU node)")
sys.meta_path.insert(0, Offline())
sys.path.insert(0, "bench")
'''


def run_on_offline_node(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``code`` after the import blocker, from the checkout with ``PYTHONPATH=.``, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-c", BLOCK + code], cwd=REPO, env={"PYTHONPATH": ".", "PATH": "/usr/bin"},
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_the_training_part_runs_with_only_the_gpu_nodes_packages_and_the_grading_part_says_what_is_missing():
    proc = run_on_offline_node('''
import torch, gpu
from course_lib.data import load_synthetic
row, model = gpu.train_row("synthetic", load_synthetic("train", num_images=16), load_synthetic("val", num_images=8),
                           False, 1, 600.0, torch.device("cpu"))
print("ROW", sorted(row))
print("GRADING", gpu.grading_rows(model, row["model_kwargs"], load_synthetic("val", num_images=8), 1))
''')
    assert proc.returncode == 0, proc.stderr[-2000:]
    row_line = next(line for line in proc.stdout.splitlines() if line.startswith("ROW"))
    for column in ("final_miou", "images_per_s", "tflops", "s_to_target", "s_to_good", "s_to_excellent", "seconds"):
        assert column in row_line
    grading = next(line for line in proc.stdout.splitlines() if line.startswith("GRADING"))
    assert "the grader's packages are missing" in grading and "pip install -e . -e ./autograder" in grading


@pytest.mark.slow
def test_without_a_gpu_the_benchmark_refuses_plainly():
    proc = run_on_offline_node("import runpy; runpy.run_path('bench/gpu.py', run_name='__main__')", timeout=120)
    if "cuda" in proc.stdout and "no GPU here" not in proc.stdout:
        pytest.skip("this machine has a GPU: the benchmark runs instead of refusing")
    assert proc.returncode == 2 and "no GPU here" in proc.stdout and "nothing measured" in proc.stdout
