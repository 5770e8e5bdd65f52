"""``python -m course_lib.data``: get a data set, pack a term's splits into one file, describe a packed file.

    python -m course_lib.data fetch voc /data/voc [--archive FILE] [--mirror URL ...] [--no-default-mirrors]
    python -m course_lib.data fetch sbd /data/voc [--archive FILE] ...   # after voc: SBD's labels into the tree
    python -m course_lib.data pack voc /data/voc --size 64 --out voc64.npz [--splits train_aug,val]
    python -m course_lib.data pack camvid camvid_seg96x128.npz --size 96x128 --out camvid96x128.npz
    python -m course_lib.data info voc64.npz                              # its manifest, every checksum verified

Errors are printed as one message that says what to do, with exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_lib.data.voc import DataError


def _size(text: str) -> int | tuple[int, int]:
    """``"64"`` or ``"96x128"`` (height x width)."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is a side (64) or HEIGHTxWIDTH (96x128), got {text!r}")
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return (values[0], values[1])
    raise argparse.ArgumentTypeError(f"a size is a side (64) or HEIGHTxWIDTH (96x128), got {text!r}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m course_lib.data", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="download (or take) an archive, check its md5, extract it safely")
    fetch.add_argument("name", choices=["voc", "sbd"])
    fetch.add_argument("root", type=Path, help="the folder that holds (or will hold) VOCdevkit/")
    fetch.add_argument("--archive", type=Path, help="an archive obtained elsewhere, used instead of downloading")
    fetch.add_argument("--mirror", action="append", default=[], help="a URL tried first (repeat for several)")
    fetch.add_argument("--no-default-mirrors", action="store_true", help="try only --mirror and course.toml's")
    fetch.add_argument("--config", type=Path, default=Path("course.toml"),
                       help="a course.toml whose [data.mirrors] adds mirrors (default: ./course.toml if present)")
    fetch.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive after extracting")
    pack = sub.add_parser("pack", help="one file holding a data set's splits at the term's size")
    pack.add_argument("kind", choices=["voc", "camvid"])
    pack.add_argument("location", type=Path, help="the VOC root (holding VOCdevkit/), or CamVid's file or folder")
    pack.add_argument("--size", type=_size, required=True, help="the term's size: 64, or 96x128")
    pack.add_argument("--out", type=Path, required=True)
    pack.add_argument("--splits", help="comma-separated (default: voc train_aug,val; camvid train,val,test)")
    info = sub.add_parser("info", help="a packed file's manifest, with every checksum verified")
    info.add_argument("path", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "fetch":
            from course_lib.data.fetch import fetch

            fetch(args.name, args.root, archive_path=args.archive, mirrors=tuple(args.mirror),
                  default_mirrors=not args.no_default_mirrors, config=args.config, keep_archive=args.keep_archive)
        elif args.command == "pack":
            from course_lib.data.packed import describe, pack
            from course_lib.data.sources import DataSource

            splits = tuple(s.strip() for s in args.splits.split(",")) if args.splits else None
            print(describe(pack(DataSource(args.kind, args.location.expanduser()), args.size, args.out, splits)))
        else:
            from course_lib.data.packed import describe, load_packed, read_manifest

            manifest = read_manifest(args.path)
            if manifest is None:
                raise DataError(f"{args.path} has no manifest: it was not made by `python -m course_lib.data pack`")
            for split in manifest["splits"]:
                load_packed(args.path, split)  # verifies each array's checksum
            print(describe(manifest))
            print("every checksum verified")
    except (DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
