"""backend.color against published data: CIEDE2000 (Sharma, Wu & Dalal 2005) and sRGB <-> Lab."""

from __future__ import annotations

import numpy as np
import pytest

from backend import color

# G. Sharma, W. Wu, E. N. Dalal, "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data, and mathematical observations", Color Res. Appl. 30(1):21-30, 2005,
# Table 1: L1 a1 b1 | L2 a2 b2 | dE00. The pairs straddle every branch of the formula
# (hue averaging across 0/360, the 275-degree rotation term, zero chroma, near-black).
SHARMA_2005 = np.array(
    [
        [50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425],
        [50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615],
        [50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412],
        [50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669],
        [50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461],
        [50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065],
        [50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492],
        [50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977],
        [50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030],
        [50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000],
        [60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644],
        [63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630],
        [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
        [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
        [22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373],
        [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
        [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
        [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
        [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
        [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
    ]
)


def test_sharma_table_has_34_pairs():
    assert SHARMA_2005.shape == (34, 7)


@pytest.mark.parametrize("i", range(34))
def test_ciede2000_matches_sharma_pair(i):
    row = SHARMA_2005[i]
    got = float(color.ciede2000(row[:3], row[3:6]))
    assert abs(got - row[6]) < 1e-4, f"pair {i + 1}: got {got:.6f}, published {row[6]:.4f}"


def test_ciede2000_vectorised_and_symmetric():
    lab1, lab2, expected = SHARMA_2005[:, :3], SHARMA_2005[:, 3:6], SHARMA_2005[:, 6]
    got = color.ciede2000(lab1, lab2)
    assert got.shape == (34,)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(color.ciede2000(lab2, lab1), got, atol=1e-9)
    # Leading axes broadcast: a 2-D grid of pairs gives the same numbers.
    np.testing.assert_allclose(color.ciede2000(lab1.reshape(2, 17, 3), lab2.reshape(2, 17, 3)).ravel(), got)


def test_ciede2000_identical_and_gray_is_zero_not_nan():
    for rgb in ([0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [1.0, 1.0, 1.0], [0.23, 0.43, 0.65]):
        lab = color.rgb_to_lab(np.array(rgb))
        d = float(color.ciede2000(lab, lab))
        assert not np.isnan(d) and abs(d) < 1e-9


def test_lab_of_white_black_and_primaries():
    np.testing.assert_allclose(color.rgb_to_lab(np.array([1.0, 1.0, 1.0])), [100.0, 0.0, 0.0], atol=0.01)
    np.testing.assert_allclose(color.rgb_to_lab(np.array([0.0, 0.0, 0.0])), [0.0, 0.0, 0.0], atol=1e-6)
    # sRGB red in CIE Lab (D65): L 53.24, a 80.09, b 67.20 (Lindbloom; rounding of the matrix ~0.05).
    np.testing.assert_allclose(color.rgb_to_lab(np.array([1.0, 0.0, 0.0])), [53.24, 80.09, 67.20], atol=0.1)


def test_lab_round_trip():
    rng = np.random.default_rng(0)
    rgb = rng.random((1000, 3))
    np.testing.assert_allclose(color.lab_to_rgb(color.rgb_to_lab(rgb)), rgb, atol=1e-5)
