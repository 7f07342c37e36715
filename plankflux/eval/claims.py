"""The papers' claims, tested on measured values: means, spread, a test and a verdict.

A claim compares two arms (e.g. the OOD and the +verify ensemble) on one quantity
measured once per replicate (an ensemble member; for Paper B a fold or run). It
reports each arm's mean, sd (ddof=1) and n, Welch's t test (unequal variances,
``scipy.stats.ttest_ind(equal_var=False)``, two-sided), and whether it holds:

* ``significant`` claims ("A < B") hold when the means differ in the claimed
  direction and the two-sided p < ``alpha``;
* ``at_least`` claims ("A ≥ B") hold when the mean of A is not below B's (the test is
  reported, not required).

A claim that cannot be tested (an arm without values, or a reference that is not
available) has ``holds: None`` and a ``note`` saying why. Descriptive claims (a
ratio with no replicates) carry ``value`` instead of a test.

Used by ``plankflux pipeline`` (Paper A, :mod:`plankflux.runs.pipeline`) and
``plankflux tables clip`` (Paper B, :mod:`plankflux.tables.clip_tables`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05


def _describe(values: Sequence[float]) -> dict:
    values = [float(v) for v in values if v is not None and np.isfinite(v)]
    return {
        "n": len(values),
        "mean": float(np.mean(values)) if values else None,
        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None,
        "values": values,
    }


def welch(a: Sequence[float], b: Sequence[float]) -> dict:
    """Welch's two-sided t test of mean(a) - mean(b): ``t``, ``df``, ``p``.

    ``None`` values where it is undefined (fewer than 2 values in an arm, or no
    variance in either arm).
    """
    a, b = _describe(a)["values"], _describe(b)["values"]
    out = {"test": "Welch t (two-sided)", "t": None, "df": None, "p": None}
    if len(a) < 2 or len(b) < 2:
        return out
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    if va + vb == 0:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.ttest_ind(a, b, equal_var=False)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    out.update(t=float(result.statistic), df=float(df), p=float(result.pvalue))
    return out


def compare(
    claim: str,
    a_name: str,
    a: Sequence[float] | None,
    b_name: str,
    b: Sequence[float] | None,
    relation: str,
    quantity: str,
    kind: str = "significant",
    alpha: float = ALPHA,
    note: str = "",
) -> dict:
    """One claim ``a <relation> b`` (``relation``: ``<`` or ``>``) about ``quantity``.

    ``kind``: ``significant`` (direction and p < alpha) or ``at_least`` (direction
    only, ties allowed).
    """
    if relation not in ("<", ">"):
        raise ValueError(f"relation must be '<' or '>', got {relation!r}")
    arms = {a_name: _describe(a or []), b_name: _describe(b or [])}
    test = welch(a or [], b or [])
    out = {
        "claim": claim,
        "quantity": quantity,
        "relation": f"{a_name} {relation if kind == 'significant' else relation + '='} {b_name}",
        "arms": arms,
        **test,
        "alpha": alpha,
        "kind": kind,
        "holds": None,
        "note": note,
    }
    ma, mb = arms[a_name]["mean"], arms[b_name]["mean"]
    if ma is None or mb is None:
        out["note"] = note or "an arm has no values: not tested"
        return out
    direction = ma < mb if relation == "<" else ma > mb
    if kind == "at_least":
        out["holds"] = bool(direction or math.isclose(ma, mb))
    elif test["p"] is None:
        out["holds"] = None
        out["note"] = note or "fewer than 2 values per arm, or no spread: no test"
    else:
        out["holds"] = bool(direction and test["p"] < alpha)
    return out


def descriptive(claim: str, quantity: str, value: float | None, holds: bool | None,
                note: str = "") -> dict:  # fmt: skip
    """A claim read off one number (no replicates, no test)."""
    return {"claim": claim, "quantity": quantity, "value": value, "holds": holds, "note": note}


def format_claims(claims: Sequence[dict], indent: str = "  ") -> list[str]:
    """One line per claim (two with a note), for printed summaries."""
    lines = []
    for c in claims:
        verdict = {True: "HOLDS", False: "does not hold", None: "not tested"}[c["holds"]]
        if "arms" in c:
            arms = "; ".join(
                f"{name} {_fmt(arm['mean'])}"
                + (f" ± {_fmt(arm['sd'])}" if arm["sd"] is not None else "")
                + f" (n={arm['n']})"
                for name, arm in c["arms"].items()
            )
            test = (
                f"Welch t = {c['t']:.2f}, df = {c['df']:.1f}, p = {c['p']:.3g}"
                if c["p"] is not None
                else "no test"
            )
            lines.append(f"{indent}[{verdict}] {c['claim']}: {arms}; {test}")
        else:
            lines.append(f"{indent}[{verdict}] {c['claim']}: {_fmt(c['value'])}")
        if c.get("note"):
            lines.append(f"{indent}    {c['note']}")
    return lines


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
