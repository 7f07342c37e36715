"""The one guard between names in user data and paths on disk.

Class names, domain names, sample ids and file names from manifests or exports become
folder and file names. A name with a separator, ``..``, a control character or an
absolute form could make plankflux write (or read) outside the folder it works in, so
every such name is checked with :func:`name_problem` where it is read, and every path
the project writes from user data is checked with :func:`ensure_inside` before it is
written.

Images may live outside their campaign only when named by an absolute path (an
explicit choice) or when ``PLANKFLUX_ALLOW_OUTSIDE=1`` is set (e.g. an ``images/``
folder that is a symbolic link to a larger disk): :func:`outside_reason` says why a
relative path is refused otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

from plankflux.errors import PlankfluxError

#: Longest name accepted for a folder or file made from user data (most file systems
#: allow 255 bytes; the proposal file names add a key and an original name to it).
MAX_NAME_LENGTH = 120
#: The file name suffixes plankflux decodes as images (compared in lower case).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"})
ALLOW_OUTSIDE_ENV = "PLANKFLUX_ALLOW_OUTSIDE"


#: Unicode direction overrides and isolates: they make a name display as another.
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _controls(text: str) -> list[str]:
    return sorted({c for c in text if ord(c) < 32 or ord(c) == 127 or c in _BIDI_CONTROLS})


def name_problem(name: str, max_length: int = MAX_NAME_LENGTH) -> str | None:
    """Why ``name`` cannot be one folder or file name, or ``None`` when it can."""
    if not name:
        return "is empty"
    if name in (".", ".."):
        return f"{name!r} is not a name"
    if "/" in name or "\\" in name:
        return f"{name!r} contains a path separator ('/' or '\\'); use e.g. '_' instead"
    bad = _controls(name)
    if bad:
        return f"{name!r} contains control character(s) {[hex(ord(c)) for c in bad]}"
    if name != name.strip():
        return f"{name!r} starts or ends with white space"
    if len(name) > max_length:
        return f"is {len(name)} characters long (at most {max_length})"
    return None


def check_name(name: str, what: str) -> str:
    """``name`` if it is a safe folder/file name, else a :class:`PlankfluxError` naming
    ``what`` (e.g. ``"classes.txt line 3"``)."""
    problem = name_problem(name)
    if problem:
        raise PlankfluxError(f"{what}: {problem}")
    return name


def control_problem(text: str) -> str | None:
    """Why ``text`` (an id that is never a path) is unusable: control characters only."""
    bad = _controls(text)
    return f"{text!r} contains control character(s) {[hex(ord(c)) for c in bad]}" if bad else None


def is_inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path`` (symbolic links resolved) lies inside ``root`` (resolved)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def ensure_inside(path: str | os.PathLike, root: str | os.PathLike, what: str = "") -> Path:
    """``path`` if it lies inside ``root``; else a :class:`PlankfluxError` (nothing is
    written). Called before writing any path built from user data."""
    if not is_inside(path, root):
        label = f"{what}: " if what else ""
        raise PlankfluxError(
            f"{label}refusing to write {path}: it lies outside {root} "
            f"(resolved: {os.path.realpath(path)})"
        )
    return Path(path)


def outside_allowed() -> bool:
    return os.environ.get(ALLOW_OUTSIDE_ENV, "").strip().lower() in {"1", "true", "yes"}


def outside_reason(root: str | os.PathLike, image: str) -> str | None:
    """Why the image path ``image`` of a campaign at ``root`` may not be read, or ``None``.

    A relative path must stay inside ``root`` once ``..`` and symbolic links are
    resolved; an absolute path is the user's explicit choice and is allowed.
    ``PLANKFLUX_ALLOW_OUTSIDE=1`` lifts the check.
    """
    if os.path.isabs(image) or outside_allowed():
        return None
    if is_inside(os.path.join(root, image), root):
        return None
    return (
        f"image path {image!r} leads outside the campaign folder (to "
        f"{os.path.realpath(os.path.join(root, image))}); give an absolute path if that "
        f"is intended, or set {ALLOW_OUTSIDE_ENV}=1"
    )


def suffix_problem(image: str) -> str | None:
    """Why ``image`` is not named like an image file, or ``None``."""
    suffix = Path(image).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return None
    known = ", ".join(sorted(IMAGE_SUFFIXES))
    return f"{image!r} is not an image file name (suffix {suffix or 'none'!r}; known: {known})"


def check_output(out: str | os.PathLike, **inputs: str | os.PathLike | None) -> Path:
    """``out`` if it lies outside every input folder (``campaign=...``,
    ``proposals=...``); else a :class:`PlankfluxError`: outputs never overwrite or mix
    into the user's data."""
    for what, folder in inputs.items():
        if folder is not None and Path(folder).is_dir() and is_inside(out, folder):
            raise PlankfluxError(
                f"refusing to write {out}: it lies inside the {what} folder {folder}, whose "
                "files plankflux only reads; choose an output outside it"
            )
    return Path(out)
