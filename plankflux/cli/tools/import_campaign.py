"""``plankflux import {mpic,folders,ecotaxa,cytoclus} SRC --out DIR``: turn source data into a
campaign (Paper A) or a CytoSense pair data set (Paper B, ``cytoclus``).

The source is only read; the campaign written to ``--out`` points at its images by
absolute path. After writing, the campaign is validated (images decoded by
default) and a one-line summary printed. Bad input prints every problem to stderr
and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

from plankflux.cli.tools.validate import PAIR_CHECKS

#: ``plankflux.data.readers.common.ZOOSCAN_2400DPI_PIXEL_UM``, for the help text without
#: importing the readers (a test keeps the two equal).
ZOOSCAN_2400DPI_PIXEL_UM = 25400 / 2400


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "import",
        help="import source data (mpic layout, class folders, labels CSVs) as a campaign, "
        "or CytoClus exports as CytoSense pairs",
        description="Write particles.csv/samples.csv for data as it arrives; the source "
        "is never modified, moved or copied.",
    )
    formats = parser.add_subparsers(dest="import_format", required=True, metavar="FORMAT")

    mpic = formats.add_parser(
        "mpic",
        help="github amaralvin7/mpic layout: SRC/metadata.csv + SRC/imgs/<label>/<file>",
        description="Import SRC/metadata.csv and SRC/imgs/<label>/<file> (label 'none' "
        "= unlabelled).",
    )
    mpic.add_argument("src", help="folder holding metadata.csv and imgs/")
    _add_common(mpic)

    folders = formats.add_parser(
        "folders",
        help="images in SRC/<class>/ folders, or listed in labels CSV(s)",
        description="Without --labels-csv: SRC/<class>/<image> (one sub-folder level "
        "recursed, hidden files ignored). With --labels-csv: the CSV rows (id, image "
        "path, label); paths are resolved relative to the CSV's folder, then SRC, then "
        "by file name under SRC. All particles go into one sample.",
    )
    folders.add_argument("src", help="folder of class folders, or of the listed images")
    _add_common(folders)
    folders.add_argument(
        "--labels-csv",
        nargs="+",
        action="extend",
        metavar="F",
        help="labels CSV(s) with image path and label columns (e.g. train and test lists)",
    )
    folders.add_argument(
        "--metadata-csv",
        nargs="+",
        action="extend",
        metavar="F",
        help="per-image metadata (CSV/TSV, .gz allowed) with esd_um, or area in pixels",
    )
    folders.add_argument(
        "--id-column",
        metavar="C",
        help="metadata column to join on (default: first of id, object_id, filename, ...)",
    )
    folders.add_argument("--domain", default="IMPORT", help="domain name (default IMPORT)")
    folders.add_argument("--sample-id", help="sample id of all particles (default: the domain)")
    folders.add_argument(
        "--pixel-size-um",
        type=float,
        metavar="X",
        help="µm per pixel, to turn a metadata area in pixels into ESD "
        f"(ZooScan at 2400 dpi: {ZOOSCAN_2400DPI_PIXEL_UM:.2f})",
    )
    folders.add_argument(
        "--class-map",
        metavar="F",
        help="CSV of 'source,target' rows mapping source class names onto campaign classes",
    )
    folders.add_argument(
        "--unlabelled-folder",
        metavar="NAME",
        help="source class (folder or label) whose images are imported unlabelled",
    )
    folders.add_argument(
        "--unlabelled",
        action="store_true",
        help="a deployment without labels: every image below SRC (flat or in folders, "
        "whose names are ignored) is imported unlabelled",
    )

    ecotaxa = formats.add_parser(
        "ecotaxa",
        help="an EcoTaxa export (TSV or zip) and its images",
        description="object_id -> particle_id, img_file_name under --images -> image; only "
        "validated annotations become labels (predicted/dubious ones go to label_predicted); "
        "sample_id, depth, imaged area and deployment days are mapped where present, and "
        "what is not mapped is said.",
    )
    ecotaxa.add_argument("src", metavar="EXPORT", help="EcoTaxa export: .tsv or a zip of one")
    ecotaxa.add_argument("--images", required=True, metavar="DIR", help="folder of the images")
    ecotaxa.add_argument("--domain", default="ECOTAXA", help="domain name (default ECOTAXA)")
    ecotaxa.add_argument(
        "--pixel-size-um", type=float, metavar="X", help="µm per pixel, for ESD from object_area"
    )
    _add_common(ecotaxa)

    cytoclus = formats.add_parser(
        "cytoclus",
        help="CytoClus exports (*_Pulses.csv, *_Listmode.csv, *_Info.txt, cropped images) "
        "-> a CytoSense pair data set",
        description="Convert every *_Pulses.csv export under SRC (',' or ';' with decimal "
        "commas) into annotations.csv + images/ + profiles/ at --out; missing "
        "fluorescence bands are zero-filled with a warning.",
    )
    cytoclus.add_argument("src", help="folder holding the exports (searched recursively)")
    _add_common(cytoclus)
    cytoclus.add_argument(
        "--labels", metavar="F", help="CSV of particle_id,class (unlisted particles unlabelled)"
    )
    cytoclus.add_argument(
        "--all-particles",
        action="store_true",
        help="also write particles without a cropped image (profile only)",
    )
    cytoclus.add_argument(
        "--missing-channels",
        choices=("zero", "error"),
        default="zero",
        help="a band the instrument did not record: zero-fill it (default) or stop",
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="DIR", help="campaign folder to write")
    if parser.prog.split()[-1] != "cytoclus":
        where.add_argument(
            "--into",
            metavar="CAMPAIGN",
            help="add the imported deployment to this existing campaign (its class list "
            "is kept; the replaced CSVs are kept in CAMPAIGN/.plankflux_history/)",
        )
    # `import ecotaxa` names its image folder --images, so there the check is --check-images.
    taken = any("--images" in a.option_strings for a in parser._actions)
    parser.add_argument(
        "--check-images" if taken else "--images",
        dest="check_images",
        choices=("decode", "exists", "none"),
        default="decode",
        help="how the written campaign's images are checked (default: fully decoded)",
    )
    parser.set_defaults(func=run)


def _read(args: argparse.Namespace):
    from plankflux.data.readers.class_folders import read_class_folders
    from plankflux.data.readers.cytoclus import read_cytoclus
    from plankflux.data.readers.mpic import read_mpic

    if args.import_format == "cytoclus":
        read_cytoclus(
            args.src,
            args.out,
            labels=args.labels,
            only_imaged=not args.all_particles,
            missing_channels=args.missing_channels,
        )
        return args.out
    if args.import_format == "mpic":
        return read_mpic(args.src, args.out)
    if args.import_format == "ecotaxa":
        from plankflux.data.readers.ecotaxa import read_ecotaxa_export

        return read_ecotaxa_export(
            args.src, args.images, args.out, domain=args.domain, pixel_size_um=args.pixel_size_um
        )
    return read_class_folders(
        args.src,
        args.out,
        labels_csv=args.labels_csv,
        metadata_csv=args.metadata_csv,
        id_column=args.id_column,
        domain=args.domain,
        sample_id=args.sample_id,
        pixel_size_um=args.pixel_size_um,
        class_map=args.class_map,
        unlabelled_folder=args.unlabelled_folder,
        unlabelled=args.unlabelled,
    )


def run(args: argparse.Namespace) -> int:
    from plankflux.data.campaign import validate_campaign

    command = f"plankflux import {args.import_format}"
    into = getattr(args, "into", None)
    with warnings.catch_warnings(record=True) as caught, tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("always")
        try:
            if into:  # import beside, then merge: the campaign changes only if all is well
                args.out = str(Path(tmp) / "import")
            out = _read(args)
            if into:
                from plankflux.data.merge import merge_into

                out = merge_into(into, out).root
        finally:  # the reader's warnings help with its error too
            for warning in caught:
                print(f"{command}: warning: {warning.message}", file=sys.stderr)

    if args.import_format == "cytoclus":
        return _report_pairs(command, out, args)
    campaign, problems = validate_campaign(out, check_images=args.check_images)
    if problems or campaign is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{command}: wrote {out}, but it has {len(problems)} problem(s)", file=sys.stderr)
        return 1
    missing_esd = int(campaign.particles["esd_um"].isna().sum())
    note = f"; {missing_esd} particles without esd_um (no carbon)" if missing_esd else ""
    print(f"imported {out}: {campaign.summary()}{note}")
    return 0


def _report_pairs(command: str, out, args: argparse.Namespace) -> int:
    from plankflux.data.cytosense import load_pairs, validate_pairs

    checks = PAIR_CHECKS[args.check_images]
    problems = validate_pairs(out, checks, allow_missing_image=args.all_particles)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{command}: wrote {out}, but it has {len(problems)} problem(s)", file=sys.stderr)
        return 1
    pairs = load_pairs(out, check_files="none", allow_missing_image=args.all_particles)
    print(f"imported {out}: CytoSense pairs, {pairs.summary()}")
    return 0
