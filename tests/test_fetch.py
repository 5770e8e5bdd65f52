"""Fetching VOC and SBD archives: mirrors tried in order from a local HTTP server (127.0.0.1), resumed downloads,
checksums checked before extraction, archives obtained elsewhere, unsafe archives refused. The archives are built
here in VOC's and SBD's real layouts; their checksums are passed in (never VOC's real one)."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib.data import load_voc
from course_lib.data.__main__ import main as data_cli
from course_lib.data.fetch import ARCHIVES, Archive, FetchError, configured_mirrors, download, fetch
from test_data import build_voc_tree


def voc_archive(tmp: Path) -> tuple[Path, Path]:
    """A VOCtrainval_11-May-2012.tar with VOC's layout (VOCdevkit/VOC2012/...) and the tree it was made from."""
    tree = tmp / "tree"
    build_voc_tree(tree)
    (tree / "VOCdevkit" / "VOC2012" / "Annotations").mkdir()  # a folder of the real archive the course never reads
    (tree / "VOCdevkit" / "VOC2012" / "Annotations" / "2007_000001.xml").write_text("<annotation/>")
    archive = tmp / "served" / ARCHIVES["voc"].filename
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w") as tar:
        tar.add(tree / "VOCdevkit", arcname="VOCdevkit")
    return archive, tree


def spec_for(path: Path, mirrors: tuple[str, ...] = ()) -> Archive:
    """VOC's description with the checksum and size of a test archive instead of the real ones."""
    data = path.read_bytes()
    return replace(ARCHIVES["voc"], md5=hashlib.md5(data).hexdigest(), size=len(data), mirrors=mirrors)


class Mirrors:
    """Paths served by one local server: /good/<file>, /corrupt/<file> (the same length, other bytes), /cut/<file>
    (the first response stops half-way, later ones honour Range), /norange/<file> (Range ignored), anything else 404.
    ``requests`` records (path, Range header) of every request."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.corrupt = bytes(b ^ 0x5A for b in payload)
        self.requests: list[tuple[str, str | None]] = []
        self.cuts = 0
        mirrors = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                mirrors.requests.append((self.path, rng))
                kind = self.path.split("/")[1]
                if kind not in ("good", "corrupt", "cut", "norange"):
                    self.send_error(404, "Not Found")
                    return
                body = mirrors.corrupt if kind == "corrupt" else mirrors.payload
                start = int(rng.split("=")[1].split("-")[0]) if rng and kind != "norange" else 0
                if start >= len(body) and rng:
                    self.send_response(416)
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if kind == "cut" and mirrors.cuts == 0:
                    mirrors.cuts += 1
                    self.wfile.write(body[start:len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, kind: str) -> str:
        return f"{self.base}/{kind}/"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served(tmp_path):
    archive, tree = voc_archive(tmp_path)
    mirrors = Mirrors(archive.read_bytes())
    yield archive, tree, mirrors
    mirrors.close()


def refused_url() -> str:
    """A port on 127.0.0.1 nobody listens on: connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/voc/"


def test_mirrors_are_tried_in_order_until_one_serves_the_published_file(served, tmp_path):
    archive, tree, mirrors = served
    spec = spec_for(archive, ARCHIVES["voc"].mirrors)  # the published mirrors are never reached: one given works
    lines = []
    voc = fetch("voc", tmp_path / "data", archive=spec, log=lines.append,
                mirrors=(refused_url(), mirrors.url("missing"), mirrors.url("corrupt"), mirrors.url("good")))
    assert voc == tmp_path / "data" / "VOCdevkit" / "VOC2012"
    failures = "\n".join(lines)
    assert "connection refused" in failures and "HTTP 404" in failures
    assert f"md5 is {hashlib.md5(mirrors.corrupt).hexdigest()}, not the published {spec.md5} (removed)" in failures
    assert not list((tmp_path / "data" / "downloads").glob("*"))  # the bad file removed, the archive too
    assert not (voc / "Annotations").exists()  # only the folders the course reads are extracted
    for split in ("train", "val"):  # the extracted tree is the one the archive was made from
        got, want = load_voc(tmp_path / "data", split, 32, cache_dir=""), load_voc(tree, split, 32, cache_dir="")
        assert torch.equal(got.images, want.images) and torch.equal(got.masks, want.masks)


def test_when_every_mirror_fails_the_error_says_how_each_failed_and_what_to_do(served, tmp_path):
    archive, _, mirrors = served
    spec = spec_for(archive, (refused_url(), mirrors.url("missing"), mirrors.url("corrupt")))
    with pytest.raises(FetchError) as caught:
        download(spec, tmp_path / "downloads", log=lambda line: None)
    message = str(caught.value)
    assert "connection refused" in message and "HTTP 404" in message and "not the published" in message
    assert "--mirror URL" in message and "--archive PATH" in message
    assert not list((tmp_path / "downloads").glob("*"))


def test_a_download_cut_mid_way_is_resumed_with_a_range_request(served, tmp_path):
    archive, _, mirrors = served
    spec = spec_for(archive, (mirrors.url("cut"),))
    path = download(spec, tmp_path / "downloads", log=lambda line: None)
    assert path.read_bytes() == archive.read_bytes()
    half = len(archive.read_bytes()) // 2
    assert mirrors.requests == [(f"/cut/{spec.filename}", None), (f"/cut/{spec.filename}", f"bytes={half}-")]


def test_a_partial_file_of_an_earlier_run_is_resumed_or_restarted_where_the_server_cannot_resume(served, tmp_path):
    archive, _, mirrors = served
    payload = archive.read_bytes()
    for kind, expected_range in (("good", f"bytes={len(payload) // 3}-"), ("norange", f"bytes={len(payload) // 3}-")):
        folder = tmp_path / kind
        folder.mkdir()
        (folder / f"{ARCHIVES['voc'].filename}.part").write_bytes(payload[: len(payload) // 3])
        mirrors.requests.clear()
        lines = []
        path = download(spec_for(archive, (mirrors.url(kind),)), folder, log=lines.append)
        assert path.read_bytes() == payload and mirrors.requests[0][1] == expected_range
        said = "\n".join(lines)
        assert ("resuming at" in said) if kind == "good" else ("does not resume downloads: starting again" in said)


def test_an_archive_obtained_elsewhere_is_checked_then_extracted_and_a_tampered_one_refused(served, tmp_path):
    archive, tree, _ = served
    spec = spec_for(archive)
    fetch("voc", tmp_path / "data", archive_path=archive, archive=spec, default_mirrors=False, log=lambda line: None)
    assert len(load_voc(tmp_path / "data", "val", 32, cache_dir="")) == 2
    assert archive.is_file()  # the instructor's own file is never removed
    tampered = tmp_path / "tampered.tar"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(FetchError, match=r"its md5 is [0-9a-f]{32}, the published one is .*download it again"):
        fetch("voc", tmp_path / "other", archive_path=tampered, archive=spec, log=lambda line: None)
    assert not (tmp_path / "other" / "VOCdevkit").exists() and tampered.is_file()


def test_an_archive_with_an_entry_outside_the_target_is_refused_before_anything_is_written(tmp_path):
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        for name, data in (("VOCdevkit/VOC2012/JPEGImages/a.jpg", b"x"), ("../escaped.txt", b"gotcha")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    spec = replace(spec_for(evil), members=())
    with pytest.raises(FetchError, match="refused to extract '../escaped.txt'.*nothing was extracted"):
        fetch("voc", tmp_path / "root", archive_path=evil, archive=spec, log=lambda line: None)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "root" / "VOCdevkit").exists()


def test_a_mirror_announcing_another_size_is_skipped_without_downloading_it(served, tmp_path):
    archive, _, mirrors = served
    spec = replace(spec_for(archive, (mirrors.url("good"),)), size=len(archive.read_bytes()) + 1)
    with pytest.raises(FetchError, match=r"serves [\d,]+ bytes, but .* has"):
        download(spec, tmp_path / "downloads", log=lambda line: None)


def test_course_toml_and_the_command_line_add_mirrors_before_the_published_ones(served, tmp_path, monkeypatch, capsys):
    archive, _, mirrors = served
    config = tmp_path / "course.toml"
    config.write_text(f'[data.mirrors]\nvoc = ["{mirrors.url("good")}"]\n')
    assert configured_mirrors("voc", config) == (mirrors.url("good"),) and configured_mirrors("sbd", config) == ()
    monkeypatch.setitem(ARCHIVES, "voc", spec_for(archive, ARCHIVES["voc"].mirrors))
    code = data_cli(["fetch", "voc", str(tmp_path / "data"), "--mirror", mirrors.url("missing"), "--config",
                     str(config), "--no-default-mirrors"])
    out = capsys.readouterr().out
    assert code == 0 and out.index("/missing/") < out.index("/good/") and "voc: ready in" in out
    assert [path.split("/")[1] for path, _ in mirrors.requests] == ["missing", "good"]
    code = data_cli(["fetch", "voc", str(tmp_path / "again"), "--mirror", mirrors.url("missing"), "--config",
                     str(tmp_path / "none.toml"), "--no-default-mirrors"])
    assert code == 1 and "HTTP 404" in capsys.readouterr().err


def test_sbd_is_fetched_into_the_voc_tree_as_palette_pngs(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    voc = build_voc_tree(tmp_path / "data", ids_train=("2007_000001",), ids_val=("2007_000010",),
                         aug_ids=("2008_000100",))
    (voc / "SegmentationClassAug" / "2008_000100.png").unlink()
    dataset = tmp_path / "sbd_src" / "benchmark_RELEASE" / "dataset"
    for sub in ("img", "cls", "inst"):
        (dataset / sub).mkdir(parents=True)
    label = np.zeros((110, 120), dtype=np.uint8)  # 2008_000100 is the tree's 3rd image: 90 + 10 * 2 rows
    label[5:40, 10:60] = 12
    scipy_io.savemat(dataset / "cls" / "2008_000100.mat", {"GTcls": {"Segmentation": label}})
    (dataset / "img" / "2008_000100.jpg").write_bytes((voc / "JPEGImages" / "2008_000100.jpg").read_bytes())
    (dataset / "inst" / "2008_000100.mat").write_bytes(b"instance labels the course does not use")
    (dataset / "train.txt").write_text("2008_000100\n")
    (dataset / "val.txt").write_text("")
    tgz = tmp_path / "benchmark.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(tmp_path / "sbd_src" / "benchmark_RELEASE", arcname="benchmark_RELEASE")
    spec = replace(ARCHIVES["sbd"], md5=hashlib.md5(tgz.read_bytes()).hexdigest(), size=tgz.stat().st_size)
    fetch("sbd", tmp_path / "data", archive_path=tgz, archive=spec, log=lambda line: None)
    assert not (tmp_path / "data" / "SBD" / "benchmark_RELEASE" / "dataset" / "inst").exists()
    aug = load_voc(tmp_path / "data", "train_aug", 32, cache_dir="")
    assert len(aug) == 2 and 12 in aug.masks.unique().tolist()


def test_fetching_sbd_before_voc_says_to_fetch_voc_first(tmp_path):
    with pytest.raises(Exception, match="fetch voc"):
        fetch("sbd", tmp_path / "empty", archive_path=tmp_path / "benchmark.tgz", log=lambda line: None)


def test_the_published_archives_name_their_real_checksums_and_several_mirrors():
    assert ARCHIVES["voc"].md5 == "6cd6e144f989b92b3379bac3b3de84fd" and len(ARCHIVES["voc"].mirrors) >= 3
    assert ARCHIVES["sbd"].md5 == "82b4d87ceb2ed10f6038a1cba92111cb"
    from torchvision.datasets import SBDataset
    from torchvision.datasets.voc import DATASET_YEAR_DICT

    assert DATASET_YEAR_DICT["2012"]["md5"] == ARCHIVES["voc"].md5 and SBDataset.md5 == ARCHIVES["sbd"].md5


def test_no_code_path_calls_torchvisions_download():
    import re

    root = Path(__file__).resolve().parents[1]
    for path in [*(root / "course_lib").rglob("*.py"), *(root / "autograder").rglob("*.py")]:
        text = path.read_text()
        assert "VOCSegmentation" not in text and not re.search(r"SBDataset\([^)]*download", text), path
        assert "download_and_extract_archive" not in text and "download_url" not in text, path
