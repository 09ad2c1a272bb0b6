"""Geodesicity on synthetic energies with known answers (no network): a critic that IS minus the geodesic
distance must score rho_geo = 1 and a clearly positive index; minus the Euclidean distance a negative one."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from crl.envs.maze import load_layout
from crl.errors import ConfigError
from crl.eval import geodesicity
from crl.eval.geodesic import parse_cell, sample_free_positions, spearman


@pytest.mark.parametrize("layout", ["u4", "u5"])
def test_geodesic_energy_scores_geodesic_and_euclidean_energy_does_not(layout: str) -> None:
    maze = load_layout(layout, 4.0)
    geo = geodesicity(maze, lambda a, b: -maze.geodesic_distance(a, b), num_pairs=1000, seed=1, bootstrap=200)
    assert geo["rho_geo"] > 0.999
    assert geo["index"] > 0.05 and geo["ci95"]["index"][0] > 0.05
    assert geo["wall_pairs"]["pairs"] >= 100 and geo["wall_pairs"]["index"] > 0.5
    assert geo["notes"] == []  # these mazes separate the two distances

    euc = geodesicity(maze, lambda a, b: -np.linalg.norm(a - b, axis=-1), num_pairs=1000, seed=1, bootstrap=200)
    assert euc["rho_euc"] > 0.999
    assert euc["index"] < -0.05 and euc["ci95"]["index"][1] < 0
    assert euc["wall_pairs"]["index"] < -0.5
    # the same pairs for the same seed: the two indices are mirror images
    assert euc["index"] == pytest.approx(-geo["index"])


def test_open_maze_gets_a_note_and_noise_scores_near_zero() -> None:
    big = load_layout("big", 4.0)
    r = geodesicity(big, lambda a, b: -big.geodesic_distance(a, b), num_pairs=2000, seed=0, bootstrap=0)
    assert r["spearman_geo_euc"] > 0.95 and any("barely disagree" in n for n in r["notes"])
    u5 = load_layout("u5", 4.0)
    rng = np.random.default_rng(0)
    noise = geodesicity(u5, lambda a, b: rng.normal(size=len(a)), num_pairs=1000, seed=0, bootstrap=200)
    assert abs(noise["rho_geo"]) < 0.1 and noise["ci95"]["rho_geo"][0] < 0 < noise["ci95"]["rho_geo"][1]


def test_helpers() -> None:
    x, y = np.random.default_rng(0).normal(size=(2, 50))
    y[:5] = y[5]  # ties
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    maze = load_layout("u", 4.0)
    pts = sample_free_positions(maze, 500, np.random.default_rng(0))
    assert all(maze.is_free(maze.xy_to_cell(p)) for p in pts)
    assert parse_cell(None, maze) == (3, 1)  # the goal cell farthest from the start (1, 1)
    assert parse_cell("1, 3", maze) == (1, 3)
    with pytest.raises(ConfigError, match="wall"):
        parse_cell("2,2", maze)
    with pytest.raises(ConfigError, match="scores"):
        geodesicity(maze, lambda a, b: np.zeros(3), num_pairs=20)
