"""Table 1 allometry: carbon per particle against hand computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plankflux.data.classes import FLUX_GROUP, TRAP_CLASSES
from plankflux.flux import TABLE1, Allometry, load_allometry, particle_carbon_mg
from plankflux.flux.allometry import resolve_groups, shape_dimensions

CONF = Path(__file__).resolve().parents[2] / "plankflux" / "conf" / "allometry" / "table1.yaml"

# Expected mg C, computed with `bc -l` from Paper A's Table 1 (not with this code):
# e.g. aggregate ESD 100: V = 4/3·π·50³, C = 1.13e-10·V^0.81;
# long_pellet ESD 200: w = 264·200/784, l = π/w·100², V = l·π·(w/2)², C = 1.13e-10·V.
HAND = [
    ("aggregate", 100.0, 4.8469364722374419e-06),
    ("long_pellet", 200.0, 1.8777425924317458e-04),
    ("short_pellet", 150.0, 1.0783124084365267e-04),
    ("mini_pellet", 50.0, 7.3958327053259716e-06),
    ("salp_pellet", 400.0, 3.1667253948185116e-04),
    ("rhizaria", 300.0, 2.0713346593449893e-05),
    ("phyto_dino", 30.0, 6.6886178448912634e-07),
    ("phyto_long", 60.0, 3.6119552634292172e-06),
    ("phyto_round", 20.0, 2.4940568572256361e-07),
    ("phytoplankton", 30.0, 6.6886178448912634e-07),  # grouped name
    ("swimmer", 500.0, 0.0),
    ("fiber_blur", 80.0, 0.0),
    ("fiber_sharp", 80.0, 0.0),
    ("bubble", 120.0, 0.0),
    ("noise", 10.0, 0.0),
]


@pytest.mark.parametrize(("label", "esd", "expected"), HAND)
def test_carbon_matches_hand_computation(label, esd, expected):
    got = particle_carbon_mg([label], [esd])
    assert got.shape == (1,) and got.dtype == np.float64
    assert got[0] == pytest.approx(expected, rel=1e-12, abs=0)


def test_every_class_is_covered_by_the_hand_table():
    assert set(TRAP_CLASSES) <= {label for label, _, _ in HAND}


def test_vectorised_over_a_mixed_array_equals_one_by_one():
    labels = [h[0] for h in HAND] * 3
    esd = np.array([h[1] for h in HAND] * 3)
    together = particle_carbon_mg(pd.Series(labels), esd)
    apart = [particle_carbon_mg([lab], [e])[0] for lab, e in zip(labels, esd, strict=True)]
    np.testing.assert_array_equal(together, apart)


def test_shape_dimensions_follow_table1():
    w, length, v = shape_dimensions("cylinder", np.array([200.0]))
    assert w[0] == pytest.approx(67.346938775510204, rel=1e-14)  # 264·200/784
    assert length[0] == pytest.approx(466.47890917, rel=1e-9)  # π/w·100²
    w, length, _ = shape_dimensions("ellipsoid", np.array([150.0]))
    assert (w[0], length[0]) == pytest.approx((81.0, 277.7777777777778))
    w, _, v = shape_dimensions("cuboid", np.array([400.0]))
    assert w[0] == pytest.approx(252.0)
    assert v[0] == pytest.approx(7916813.487046279, rel=1e-12)  # π/252·200² · 252²/4
    with pytest.raises(ValueError, match="unknown shape"):
        shape_dimensions("cone", np.array([1.0]))


def test_zero_carbon_classes_accept_missing_esd():
    labels = ["swimmer", "noise", "bubble", "fiber_blur", "fiber_sharp", "fiber", "unidentifiable"]
    assert (particle_carbon_mg(labels, [np.nan] * len(labels)) == 0).all()


def test_unknown_labels_are_named():
    with pytest.raises(ValueError, match="'copepod_x'.*'zzz'|'zzz'.*'copepod_x'"):
        particle_carbon_mg(["aggregate", "zzz", "copepod_x", "zzz"], [100, 1, 2, 3])
    with pytest.raises(ValueError, match="unknown class"):
        particle_carbon_mg([""], [100])


@pytest.mark.parametrize("bad", [np.nan, 0.0, -5.0, np.inf])
def test_flux_carrying_particle_without_positive_esd_raises(bad):
    with pytest.raises(ValueError, match=r"^1 flux-carrying particle.*particle_id\(s\): b$"):
        particle_carbon_mg(["aggregate", "long_pellet", "noise"], [100, bad, bad], ids=list("abc"))
    with pytest.raises(ValueError, match=r"at position\(s\): 1$"):
        particle_carbon_mg(["aggregate", "long_pellet"], [100, bad])


def test_default_yaml_equals_table1_and_groups_match_flux_groups():
    assert load_allometry(CONF) == TABLE1
    assert load_allometry() is TABLE1
    assert set(TABLE1.groups) == {g for g in FLUX_GROUP.values() if g}


def test_custom_table_from_csv_and_mapping(tmp_path):
    frame = TABLE1.to_frame()
    frame.loc[frame["group"] == "aggregate", ["A", "B"]] = [2e-10, 1.0]
    path = tmp_path / "mine.csv"
    frame.to_csv(path, index=False)
    mine = load_allometry(path)
    assert mine.params("aggregate") == ("sphere", 2e-10, 1.0)
    v = 4 / 3 * np.pi * 50**3
    assert particle_carbon_mg(["aggregate"], [100], mine)[0] == pytest.approx(2e-10 * v)
    from_mapping = load_allometry({"rows": frame.to_dict("records")})
    assert from_mapping == mine
    assert TABLE1.with_params(aggregate=(2e-10, 1.0)) == mine


def test_bad_tables_are_refused(tmp_path):
    with pytest.raises(ValueError, match="shape 'cone'"):
        Allometry((("aggregate", "cone", 1e-10, 1.0),))
    with pytest.raises(ValueError, match="duplicate"):
        Allometry((("a", "sphere", 1e-10, 1.0), ("a", "sphere", 1e-10, 1.0)))
    (tmp_path / "bad.csv").write_text("group,shape,A\naggregate,sphere,1e-10\n")
    with pytest.raises(ValueError, match="bad.csv.*missing"):
        load_allometry(tmp_path / "bad.csv")
    only_aggregate = Allometry((("aggregate", "sphere", 1e-10, 1.0),))
    with pytest.raises(ValueError, match="no row for.*long_pellet"):
        particle_carbon_mg(["long_pellet"], [100], only_aggregate)
    with pytest.raises(FileNotFoundError):
        load_allometry(tmp_path / "absent.yaml")


def test_resolve_groups():
    got = resolve_groups(["phyto_dino", "phytoplankton", "noise", "aggregate"])
    assert list(got) == ["phytoplankton", "phytoplankton", "", "aggregate"]
