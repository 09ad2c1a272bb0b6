"""Maze geometry: built-in layouts, BFS cell distances, the continuous geodesic distance, layout errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from crl.envs.maze import builtin_layouts, load_layout, parse_layout
from crl.errors import LayoutError


def test_builtin_layouts_shapes() -> None:
    # scaling-crl envs/ant_maze.py: U_MAZE, U2..U7_MAZE, BIG_MAZE, HARDEST_MAZE
    shapes = {"u": (5, 5), "u2": (5, 6), "u3": (5, 7), "u4": (7, 5), "u5": (7, 8), "u6": (7, 7), "u7": (7, 6),
              "big": (8, 8), "hardest": (9, 12)}
    assert set(shapes) <= set(builtin_layouts())
    for name, shape in shapes.items():
        maze = load_layout(name)
        assert maze.shape == shape
        low_start = name in ("u4", "u5", "u6", "u7")
        assert maze.start_cells() == [(2, 1)] if low_start else maze.start_cells() == [(1, 1)]
        # every goal cell is reachable from the start
        assert all(math.isfinite(maze.cell_distance(maze.start_cells()[0], g)) for g in maze.goal_cells())


U_BEFORE_2026_12 = "#####\n#SGG#\n###G#\n#GGG#\n#####\n"  # the 5x5 U that `u4` named until 2026-12-01


def test_u_is_the_old_u4_and_u4_is_the_papers() -> None:
    assert load_layout("u").to_text() == U_BEFORE_2026_12
    u4 = load_layout("u4")
    assert len(u4.free_cells()) == 11 and u4.start_cells() == [(2, 1)]
    assert u4.cell_distance((2, 1), (4, 1)) == 10
    assert u4.cell_distance_matrix.max() == 10  # diameter: one corridor of 11 cells
    # U-variant corridor lengths (free cells) and diameters
    for name, cells in {"u2": 9, "u3": 11, "u5": 17, "u6": 15, "u7": 13}.items():
        maze = load_layout(name)
        assert len(maze.free_cells()) == cells and maze.cell_distance_matrix.max() == cells - 1


def test_layout_text_loads_with_the_builtin_name() -> None:
    assert load_layout(load_layout("u4").to_text()).name == "u4"
    other = load_layout("#####\n#SG.#\n#####\n")
    assert other.name == "<text>" and len(other.free_cells()) == 3


def test_u_is_one_path_of_seven_cells() -> None:
    maze = load_layout("u")
    assert len(maze.free_cells()) == 7
    far = (3, 1)
    assert maze.cell_distance((1, 1), far) == 6
    assert max(maze.cell_distance((1, 1), c) for c in maze.free_cells()) == 6
    assert maze.cell_distance((1, 1), (2, 1)) == math.inf  # a wall
    assert maze.cell_distance((1, 1), (1, 1)) == 0


@pytest.mark.parametrize(
    "name,a,b,steps",
    [("big", (1, 1), (6, 6), 10), ("big", (1, 1), (1, 5), 8), ("u5", (2, 1), (4, 1), 16),
     ("hardest", (1, 1), (7, 10), 15), ("hardest", (1, 1), (7, 1), 8)],
)
def test_cell_distances_hand_computed(name: str, a: tuple, b: tuple, steps: int) -> None:
    assert load_layout(name).cell_distance(a, b) == steps


def test_cell_xy_round_trip_and_scale() -> None:
    maze = load_layout("big", cell_size=4.0)
    for cell in maze.free_cells():
        xy = maze.cell_to_xy(cell)
        assert np.allclose(xy, np.array(cell) * 4.0)
        assert maze.xy_to_cell(xy + np.array([1.9, -1.9])) == cell
    assert maze.with_cell_size(2.0).cell_size == 2.0


def test_geodesic_u_hand_computed() -> None:
    maze = load_layout("u", cell_size=4.0)
    start, far = maze.cell_to_xy((1, 1)), maze.cell_to_xy((3, 1))
    # around the wall block's two corners (1.5, 2.5) and (2.5, 2.5) in cell units
    expected = 4.0 * (2 * math.hypot(0.5, 1.5) + 1.0)
    assert maze.geodesic_distance(start, far) == pytest.approx(expected)
    # the Euclidean distance goes through the wall; the geodesic is much longer
    assert np.linalg.norm(start - far) == pytest.approx(8.0)
    # in a straight corridor it is the Euclidean distance
    assert maze.geodesic_distance(start, maze.cell_to_xy((1, 3))) == pytest.approx(8.0)
    assert maze.geodesic_distance(start, start) == 0.0


def test_geodesic_properties_random_points() -> None:
    maze = load_layout("hardest", cell_size=1.0)
    rng = np.random.default_rng(0)
    cells = np.array(maze.free_cells(), dtype=float)
    a = cells[rng.integers(0, len(cells), 200)] + rng.uniform(-0.5, 0.5, (200, 2))
    b = cells[rng.integers(0, len(cells), 200)] + rng.uniform(-0.5, 0.5, (200, 2))
    g = maze.geodesic_distance(a, b)
    assert g.shape == (200,)
    assert np.all(g >= np.linalg.norm(a - b, axis=1) - 1e-9)  # never shorter than a straight line
    assert np.allclose(g, maze.geodesic_distance(b, a))  # symmetric
    cd = np.array([maze.cell_distance(maze.xy_to_cell(x), maze.xy_to_cell(y)) for x, y in zip(a, b, strict=True)])
    # a path through cell centres is feasible: geodesic <= BFS steps + the two offsets to the centres
    bound = cd + np.linalg.norm(a - np.round(a), axis=1) + np.linalg.norm(b - np.round(b), axis=1)
    assert np.all(g <= bound + 1e-9)
    # triangle inequality through a third point
    c = cells[rng.integers(0, len(cells), 200)]
    assert np.all(g <= maze.geodesic_distance(a, c) + maze.geodesic_distance(c, b) + 1e-9)


def test_next_cell_table_follows_shortest_paths() -> None:
    maze = load_layout("big")
    cells, table, dist = maze.free_cells(), maze.next_cell_table, maze.cell_distance_matrix
    for i in range(len(cells)):
        for j in range(len(cells)):
            k = table[i, j]
            if i == j:
                assert k == i
            else:
                assert dist[k, j] == dist[i, j] - 1
                assert abs(cells[k][0] - cells[i][0]) + abs(cells[k][1] - cells[i][1]) == 1


@pytest.mark.parametrize(
    "text,where",
    [
        ("#####\n#SG#\n#####\n", "line 2, column 5"),  # ragged
        ("####\n#SX#\n####\n", "line 2, column 3"),  # unknown character
        ("####\n#.G#\n####\n", "no start"),
        ("####\n####\n", "no free cell"),
        ("#####\n#S#G#\n#####\n", "line 2, column 4"),  # goal unreachable
        ("####\n#S.#\n####\n", "no goal"),
    ],
)
def test_bad_layouts_name_the_problem(text: str, where: str) -> None:
    with pytest.raises(LayoutError, match=where):
        parse_layout(text, "bad.txt")


def test_layout_file_and_unknown_name(tmp_path: Path) -> None:
    path = tmp_path / "corridor.txt"
    path.write_text("\n#####\n#S.G#\n#####\n\n")
    maze = load_layout(path, cell_size=2.0)
    assert maze.cell_distance((1, 1), (1, 3)) == 2
    assert parse_layout(maze.to_text()).rows == maze.rows
    with pytest.raises(LayoutError, match="unknown layout"):
        load_layout(tmp_path / "missing.txt")
