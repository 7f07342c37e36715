"""Verification ingest: read an expert's edits of a proposal folder (docs/paper_a.md, steps 4–5).

Each file listed in ``manifest.csv`` is looked up by its file name in the class
folders:

* still in its proposed class folder -> ``confirmed`` (label = proposed class);
* in another class folder -> ``relabelled`` (label = that folder's class);
* gone -> ``rejected`` (label empty): ambiguous or unusable in a verification round,
  "not that class" in a minboost round (``mode="minboost"``, where the proposed class
  is the only one offered; a file moved anyway still counts as relabelled).

A minboost particle proposed for two classes has a row and a file in each of the two
class folders; the expert's placement decides: the row of the folder it is left in
is ``confirmed``, the other ``rejected``; deleted from both, both are ``rejected``;
moved to a third class folder, its first row is ``relabelled`` and the other
``rejected``. So ``verified.csv`` has one row per manifest row, and at most one kept
row per particle.

Anything else is an error: a file not in the manifest, a file outside the class
folders, a sub-folder that is not a class, a manifest file present in two class
folders (for a particle proposed for both: left in both, i.e. not decided), a
missing or unreadable manifest. All of them are collected and raised as
one :class:`VerificationError` listing every offending path, and nothing is written.
Operating-system clutter (``.DS_Store``, ``._*``, ``Thumbs.db``, ``desktop.ini``) is
ignored.

Output ``verified.csv``: ``particle_id``, ``label``, ``action``, in manifest order,
written atomically; by default beside the folder as ``<proposal_dir>.verified.csv``
(not inside it, where it would be a file the folder check does not expect). Ingest
only reads the folder, so running it twice gives the same file.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from plankflux.errors import ProblemsError
from plankflux.hitl.proposals import is_os_metadata, proposal_keys
from plankflux.layout import MANIFEST_COLUMNS, MANIFEST_FILE, REVIEW_MODES
from plankflux.utils.atomic import write_csv_atomic
from plankflux.utils.paths import name_problem

MODES = REVIEW_MODES


class VerificationError(ProblemsError):
    """An edited proposal folder cannot be ingested; ``problems`` lists every defect."""

    def __init__(self, proposal_dir: Path, problems: Sequence[str]):
        self.proposal_dir = proposal_dir
        super().__init__(
            f"cannot ingest proposal folder {proposal_dir}",
            problems,
            note=" (nothing was written)",
            max_shown=50,
        )


def default_verified_path(proposal_dir: str | os.PathLike) -> Path:
    """``<proposal_dir>.verified.csv``, beside the proposal folder."""
    folder = Path(os.path.abspath(proposal_dir))
    return folder.with_name(folder.name + ".verified.csv")


def read_manifest(
    proposal_dir: Path, classes: Sequence[str], particle_ids: Collection[str] | None = None
) -> tuple[pd.DataFrame | None, list[str]]:
    """The manifest (with a ``file`` and ``folder`` column added) and its problems.

    Besides its columns, each row's file name must start with the key of its particle
    id (so rows whose ids were shuffled, e.g. by sorting one column in a spreadsheet,
    are refused) and, when ``particle_ids`` (the campaign's) is given, the particle
    must be in the campaign. A byte-order mark and CRLF line ends (a manifest saved
    again by a spreadsheet) are accepted.
    """
    path = proposal_dir / MANIFEST_FILE
    if not path.is_file():
        return None, [f"{path}: {MANIFEST_FILE} not found (not a proposal folder, or unfinished)"]
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig"
        )
    except Exception as err:  # pandas raises several types for damaged files
        return None, [f"{path}: cannot be read as CSV ({type(err).__name__}: {err})"]
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        return None, [f"{path}: missing column(s) {', '.join(missing)}"]
    problems = []
    parts = frame["image"].str.split("/")
    frame["folder"] = parts.str[0]
    frame["file"] = parts.str[-1]
    known = set(classes)
    rows = zip(
        frame["particle_id"], frame["image"], frame["proposed_label"], frame["folder"],
        parts.str.len(), strict=True,
    )  # fmt: skip
    keys = proposal_keys(frame["particle_id"].tolist())
    for line, (pid, image, label, folder, n_parts) in enumerate(rows, start=2):
        if not pid:
            problems.append(f"{path} line {line}: empty particle_id")
        elif particle_ids is not None and pid not in particle_ids:
            problems.append(f"{path} line {line}: particle_id {pid!r} is not in the campaign")
        if label not in known:
            problems.append(f"{path} line {line}: proposed_label {label!r} is not a class")
        if n_parts != 2 or folder != label or name_problem(image.split("/")[-1]):
            problems.append(f"{path} line {line}: image {image!r} is not <proposed_label>/<file>")
        elif pid and not image.split("/")[-1].startswith(keys[line - 2] + "__"):
            problems.append(
                f"{path} line {line}: image {image!r} is not the file of particle_id {pid!r} "
                "(was the manifest sorted or edited?)"
            )
    twice = frame.duplicated(["particle_id", "proposed_label"])
    for value in sorted(set(frame.loc[twice, "particle_id"])):
        problems.append(f"{path}: particle_id {value!r} listed more than once for one class")
    names = frame.groupby("file")["particle_id"].nunique()
    for value in sorted(names.index[names > 1]):
        problems.append(f"{path}: file {value!r} listed more than once")
    return (None if problems else frame), problems


def proposed_folders(manifest: pd.DataFrame) -> dict[str, set[str]]:
    """Manifest file name -> the class folders it was proposed in (two for a particle
    minboost proposed for two classes)."""
    return manifest.groupby("file")["proposed_label"].agg(set).to_dict()


def scan_proposal_folder(
    proposal_dir: str | os.PathLike,
    classes: Sequence[str],
    particle_ids: Collection[str] | None = None,
    decided: bool = True,
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Check an edited proposal folder; return its manifest and where each file now is.

    The mapping is manifest file name -> the class folders it lies in (absent =
    deleted). With ``decided`` every file must lie in at most one folder; otherwise a
    file proposed for several classes may still lie in those (as written).
    Raises :class:`VerificationError` listing every problem.
    """
    proposal_dir = Path(proposal_dir)
    if not proposal_dir.is_dir():
        raise VerificationError(proposal_dir, [f"{proposal_dir}: folder not found"])
    manifest, problems = read_manifest(proposal_dir, classes, particle_ids)
    listed = set(manifest["file"]) if manifest is not None else None
    known = set(classes)
    found: dict[str, list[str]] = {}
    folders = []
    for entry in sorted(os.scandir(proposal_dir), key=lambda e: e.name):
        if entry.name == MANIFEST_FILE or is_os_metadata(entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            if entry.name in known:
                folders.append(entry)
            else:
                problems.append(f"{entry.path}: folder is not a class")
        else:
            problems.append(f"{entry.path}: file outside the class folders")
    n_files = len(manifest) if manifest is not None else 0
    for folder in tqdm(folders, desc="reading verification", unit="folder",
                       disable=True if n_files < 2000 else None):  # fmt: skip
        for item in sorted(os.scandir(folder.path), key=lambda e: e.name):
            if is_os_metadata(item.name):
                continue
            if item.is_dir(follow_symlinks=False):
                problems.append(f"{item.path}: sub-folder inside a class folder")
            elif listed is not None and item.name not in listed:
                problems.append(f"{item.path}: file not in the manifest")
            else:
                found.setdefault(item.name, []).append(folder.name)
    proposed = proposed_folders(manifest) if manifest is not None else {}
    for name, where in sorted(found.items()):
        if len(where) > 1 and (decided or not set(where) <= proposed.get(name, set())):
            paths = ", ".join(str(proposal_dir / c / name) for c in where)
            hint = (
                "; it was proposed for several classes: leave it in the folder of its "
                "class only and delete the other copies"
                if len(proposed.get(name, ())) > 1
                else ""
            )
            problems.append(f"{name}: present in {len(where)} class folders: {paths}{hint}")
    if problems:
        raise VerificationError(proposal_dir, problems)
    return manifest, found


def ingest_verification(
    proposal_dir: str | os.PathLike,
    classes: Sequence[str],
    out_path: str | os.PathLike | None = None,
    mode: str = "verify",
    particle_ids: Collection[str] | None = None,
) -> pd.DataFrame:
    """Compare an edited proposal folder with its manifest; write and return ``verified.csv``.

    ``classes``: the class list (the allowed folder names). ``out_path``: where to
    write (default :func:`default_verified_path`). ``mode``: ``verify`` or ``minboost``
    (the same file actions; see the module doc). ``particle_ids``: the campaign's, to
    refuse a manifest naming a particle that is not in it. Raises :class:`VerificationError`,
    writing nothing, when the folder has any problem.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    manifest, location = scan_proposal_folder(proposal_dir, classes, particle_ids)
    verified = verdicts(manifest, location)
    write_verified(verified, out_path or default_verified_path(proposal_dir))
    return verified


def verdicts(manifest: pd.DataFrame, location: Mapping[str, str | Sequence[str]]) -> pd.DataFrame:
    """The verified table of a manifest (with its ``file`` column, as
    :func:`read_manifest` gives it) from where each file ended up: manifest file name ->
    its class folder (or folders), absent = deleted. The one place verdicts are made
    from decisions: the folder ingest and ``plankflux review`` both call it."""
    where = {k: [v] if isinstance(v, str) else list(v) for k, v in location.items()}
    proposed = proposed_folders(manifest)
    now = pd.Series([where.get(name, [""])[0] for name in manifest["file"]], index=manifest.index)
    action = pd.Series("relabelled", index=manifest.index)
    action[now == manifest["proposed_label"]] = "confirmed"
    action[now == ""] = "rejected"
    # A particle proposed for several classes: only one row keeps its label (see above).
    other_row = [
        now_at != label and now_at in proposed[name]
        for name, label, now_at in zip(
            manifest["file"], manifest["proposed_label"], now, strict=True
        )
    ]
    moved_again = (action == "relabelled") & manifest["file"].duplicated()
    action[pd.Series(other_row, index=manifest.index) | moved_again] = "rejected"
    now[action == "rejected"] = ""
    return pd.DataFrame(
        {"particle_id": manifest["particle_id"], "label": now, "action": action}
    ).reset_index(drop=True)


def write_verified(verified: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a verified table (:func:`verdicts`) to ``path`` atomically; return the path."""
    write_csv_atomic(verified, path)
    return Path(path)
