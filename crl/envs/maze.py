"""Maze geometry shared by the environments, the stitching splits and the evaluators.

A layout is text: `#` wall, `.` free, `S` start cell, `G` goal cell (start and goal cells are free). Row `r`,
column `c` of the text is cell `(r, c)`; its centre is at world `xy = (r * cell_size, c * cell_size)` (the
JaxGCRL convention: x runs down the rows, y along the columns), and the cell covers
`[x - cell_size/2, x + cell_size/2] x [y - cell_size/2, y + cell_size/2]`. Cells outside the text are walls.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

from crl.errors import LayoutError

Cell = tuple[int, int]

WALL, FREE, START, GOAL = "#", ".", "S", "G"
_KNOWN = {WALL, FREE, START, GOAL}
_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def builtin_layouts() -> list[str]:
    """Names of the layouts shipped with the package (`crl/envs/layouts/<name>.txt`)."""
    folder = resources.files("crl.envs") / "layouts"
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".txt"))


@dataclass(frozen=True)
class Maze:
    """A validated maze layout with a cell size (world units per cell). Immutable; build with `load_layout`."""

    name: str
    rows: tuple[str, ...]
    cell_size: float = 1.0

    # ---------------------------------------------------------------- cells
    @property
    def shape(self) -> tuple[int, int]:
        """(number of rows, number of columns)."""
        return len(self.rows), len(self.rows[0])

    def is_free(self, cell: Cell) -> bool:
        """True for a start, goal or free cell inside the grid."""
        r, c = cell
        return 0 <= r < self.shape[0] and 0 <= c < self.shape[1] and self.rows[r][c] != WALL

    def free_cells(self) -> list[Cell]:
        """Every non-wall cell, row-major."""
        return [(r, c) for r, row in enumerate(self.rows) for c, ch in enumerate(row) if ch != WALL]

    def wall_cells(self) -> list[Cell]:
        """Every wall cell, row-major."""
        return [(r, c) for r, row in enumerate(self.rows) for c, ch in enumerate(row) if ch == WALL]

    def start_cells(self) -> list[Cell]:
        """The `S` cells, row-major."""
        return [(r, c) for r, row in enumerate(self.rows) for c, ch in enumerate(row) if ch == START]

    def goal_cells(self) -> list[Cell]:
        """The `G` cells, row-major."""
        return [(r, c) for r, row in enumerate(self.rows) for c, ch in enumerate(row) if ch == GOAL]

    def with_cell_size(self, cell_size: float) -> Maze:
        """The same layout at another scale (ant mazes use 4, humanoid mazes 2)."""
        return Maze(self.name, self.rows, float(cell_size))

    def to_text(self) -> str:
        """The layout as text (round-trips through `parse_layout`)."""
        return "\n".join(self.rows) + "\n"

    # ------------------------------------------------------------ distances
    @cached_property
    def _cell_index(self) -> dict[Cell, int]:
        return {cell: i for i, cell in enumerate(self.free_cells())}

    @cached_property
    def cell_distance_matrix(self) -> np.ndarray:
        """All-pairs BFS steps between free cells, indexed like `free_cells()` (inf when unreachable)."""
        cells = self.free_cells()
        idx = self._cell_index
        out = np.full((len(cells), len(cells)), np.inf)
        for i, src in enumerate(cells):
            out[i, i] = 0.0
            queue = deque([src])
            while queue:
                cur = queue.popleft()
                for dr, dc in _NEIGHBOURS:
                    nxt = (cur[0] + dr, cur[1] + dc)
                    j = idx.get(nxt)
                    if j is not None and out[i, j] == np.inf:
                        out[i, j] = out[i, idx[cur]] + 1
                        queue.append(nxt)
        return out

    def cell_distance(self, a: Cell, b: Cell) -> float:
        """Steps of the shortest 4-connected path of free cells from `a` to `b`; `math.inf` when unreachable
        (or when either is a wall / outside the grid)."""
        i, j = self._cell_index.get(tuple(a)), self._cell_index.get(tuple(b))
        if i is None or j is None:
            return math.inf
        d = self.cell_distance_matrix[i, j]
        return math.inf if np.isinf(d) else float(d)

    @cached_property
    def next_cell_table(self) -> np.ndarray:
        """[n_free, n_free] index of the neighbour to step to from cell i on a shortest path to cell j (i itself
        when i == j or j is unreachable). The oracle controller follows it."""
        dist = self.cell_distance_matrix
        cells = self.free_cells()
        idx = self._cell_index
        n = len(cells)
        table = np.tile(np.arange(n)[:, None], (1, n))
        for i, (r, c) in enumerate(cells):
            for dr, dc in _NEIGHBOURS:
                k = idx.get((r + dr, c + dc))
                if k is None:
                    continue
                better = (dist[k] + 1 == dist[i]) & (table[i] == i) & (np.arange(n) != i)
                table[i, better] = k
        return table

    # ------------------------------------------------------------ world <-> cell
    def cell_to_xy(self, cell: Cell) -> np.ndarray:
        """World coordinates of a cell's centre: `(row * cell_size, col * cell_size)`."""
        return np.asarray(cell, dtype=np.float64) * self.cell_size

    def xy_to_cell(self, xy: np.ndarray) -> Cell:
        """The cell whose square contains `xy` (rounded to the nearest centre; may be a wall or outside)."""
        r, c = np.floor(np.asarray(xy, dtype=np.float64) / self.cell_size + 0.5).astype(int)
        return int(r), int(c)

    # ------------------------------------------------------------ geodesic
    def geodesic_distance(self, xy_a: np.ndarray, xy_b: np.ndarray) -> np.ndarray | float:
        """Length of the shortest path from `xy_a` to `xy_b` that stays inside the free space.

        Exact definition: the free space is the union of the closed squares of the free cells (walls and the
        outside of the grid are obstacles; the agent is a point, so a path may touch wall faces and corners).
        The distance is the Euclidean length of the shortest polyline in that set, computed exactly with a
        visibility graph whose nodes are the grid vertices that touch both a wall and a free cell (shortest paths
        around polygonal obstacles bend only at obstacle corners). A point inside a wall (or outside the grid) is
        first moved to the nearest point of the free space. Inside one convex region (e.g. a straight corridor)
        this is the Euclidean distance; around a corner it is longer; it is `inf` only between disconnected
        regions. Broadcasts over leading dimensions: `xy_a`, `xy_b` of shape [..., 2] give shape [...].
        """
        a = np.asarray(xy_a, dtype=np.float64)
        b = np.asarray(xy_b, dtype=np.float64)
        a, b = np.broadcast_arrays(a, b)
        lead = a.shape[:-1]
        a = self._project_to_free(a.reshape(-1, 2) / self.cell_size)
        b = self._project_to_free(b.reshape(-1, 2) / self.cell_size)
        nodes, node_dist = self._visibility_graph
        direct = np.where(self._visible(a, b), np.linalg.norm(a - b, axis=-1), np.inf)
        if len(nodes):
            vis_a = self._visible(a[:, None, :], nodes[None, :, :])  # [n, k]
            vis_b = self._visible(b[:, None, :], nodes[None, :, :])
            da = np.where(vis_a, np.linalg.norm(a[:, None] - nodes[None], axis=-1), np.inf)
            db = np.where(vis_b, np.linalg.norm(b[:, None] - nodes[None], axis=-1), np.inf)
            via = np.min(da[:, :, None] + node_dist[None] + db[:, None, :], axis=(1, 2))
            direct = np.minimum(direct, via)
        out = (direct * self.cell_size).reshape(lead)
        return float(out) if out.ndim == 0 else out

    @cached_property
    def _free_padded(self) -> np.ndarray:
        """Boolean free-cell grid with a one-cell wall border (index [r + 1, c + 1])."""
        grid = np.zeros((self.shape[0] + 2, self.shape[1] + 2), dtype=bool)
        for r, c in self.free_cells():
            grid[r + 1, c + 1] = True
        return grid

    def _project_to_free(self, p: np.ndarray) -> np.ndarray:
        """Move points (cell units) that are not in a free square to the nearest point of a free square."""
        cells = np.floor(p + 0.5).astype(int)
        ok = np.array([self.is_free((int(r), int(c))) for r, c in cells], dtype=bool)
        if ok.all():
            return p
        free = np.asarray(self.free_cells(), dtype=np.float64)
        clipped = np.clip(p[:, None, :], free[None] - 0.5, free[None] + 0.5)  # [n, f, 2]
        nearest = clipped[np.arange(len(p)), np.argmin(np.linalg.norm(clipped - p[:, None], axis=-1), axis=1)]
        return np.where(ok[:, None], p, nearest)

    def _visible(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """True where the segment p->q (cell units, both in free space) stays inside the union of the closed
        free squares: the segment is cut at every grid line it crosses and the midpoint of every piece must lie
        in (or, for a piece running along a grid line, on the border of) a free square."""
        p, q = np.broadcast_arrays(p, q)
        d = q - p
        n_rows, n_cols = self.shape
        ts = [np.zeros((1, *p.shape[:-1])), np.ones((1, *p.shape[:-1]))]
        for axis, n in ((0, n_rows), (1, n_cols)):
            lines = np.arange(n + 1, dtype=np.float64) - 0.5
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (lines - p[..., axis : axis + 1]) / d[..., axis : axis + 1]
            ts.append(np.moveaxis(np.where(np.isfinite(t), np.clip(t, 0.0, 1.0), 0.0), -1, 0))
        t = np.sort(np.concatenate(ts, axis=0), axis=0)
        mid = p[None] + ((t[1:] + t[:-1]) / 2)[..., None] * d[None]  # [pieces, ..., 2]
        shifted = mid + 0.5
        near = np.round(shifted)
        on_line = np.abs(shifted - near) < 1e-9
        lo = np.where(on_line, near - 1, np.floor(shifted)).astype(int) + 1
        hi = np.where(on_line, near, np.floor(shifted)).astype(int) + 1
        grid = self._free_padded
        lo = np.clip(lo, 0, np.array(grid.shape) - 1)
        hi = np.clip(hi, 0, np.array(grid.shape) - 1)
        ok = (
            grid[lo[..., 0], lo[..., 1]] | grid[lo[..., 0], hi[..., 1]]
            | grid[hi[..., 0], lo[..., 1]] | grid[hi[..., 0], hi[..., 1]]
        )
        return ok.all(axis=0)

    @cached_property
    def _visibility_graph(self) -> tuple[np.ndarray, np.ndarray]:
        """Corner nodes (cell units) and all-pairs shortest path lengths between them (Floyd-Warshall)."""
        n_rows, n_cols = self.shape
        nodes = []
        for vr in range(n_rows + 1):
            for vc in range(n_cols + 1):
                around = [(vr - 1, vc - 1), (vr - 1, vc), (vr, vc - 1), (vr, vc)]
                free = [self.is_free(cell) for cell in around]
                if any(free) and not all(free):
                    nodes.append((vr - 0.5, vc - 0.5))
        pts = np.asarray(nodes, dtype=np.float64).reshape(-1, 2)
        vis = self._visible(pts[:, None, :], pts[None, :, :])
        dist = np.where(vis, np.linalg.norm(pts[:, None] - pts[None], axis=-1), np.inf)
        for k in range(len(pts)):
            dist = np.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
        return pts, dist


def parse_layout(text: str, name: str = "<text>", cell_size: float = 1.0) -> Maze:
    """Validate layout text and build a `Maze`. Raises `LayoutError` naming the line and column of the problem."""
    lines = text.splitlines()
    first = 0
    while first < len(lines) and not lines[first].strip():
        first += 1
    last = len(lines)
    while last > first and not lines[last - 1].strip():
        last -= 1
    rows = [line.rstrip() for line in lines[first:last]]
    if not rows:
        raise LayoutError(f"{name}: the layout is empty")
    width = len(rows[0])
    for i, row in enumerate(rows):
        lineno = first + i + 1
        for j, ch in enumerate(row):
            if ch not in _KNOWN:
                raise LayoutError(
                    f"{name}: line {lineno}, column {j + 1}: unknown character {ch!r} "
                    f"(use '#' wall, '.' free, 'S' start, 'G' goal)"
                )
        if len(row) != width:
            raise LayoutError(
                f"{name}: line {lineno}, column {min(len(row), width) + 1}: ragged row of length {len(row)}, "
                f"expected {width} like line {first + 1}"
            )
    maze = Maze(name, tuple(rows), float(cell_size))
    if not maze.free_cells():
        raise LayoutError(f"{name}: line {first + 1}, column 1: the layout has no free cell")
    starts, goals = maze.start_cells(), maze.goal_cells()
    if not starts:
        raise LayoutError(f"{name}: line {first + 1}, column 1: no start cell 'S' in the layout")
    if not goals:
        raise LayoutError(f"{name}: line {first + 1}, column 1: no goal cell 'G' in the layout")
    for g in goals:
        if all(math.isinf(maze.cell_distance(s, g)) for s in starts):
            raise LayoutError(
                f"{name}: line {first + g[0] + 1}, column {g[1] + 1}: goal cell unreachable from every start cell"
            )
    return maze


def load_layout(name_or_path: str | Path, cell_size: float = 1.0) -> Maze:
    """A built-in layout by name (`u`, `u4`, `u5`, `big`, `hardest`, ...), a layout file path, or layout text itself
    (a string with a newline: how a dataset manifest records its maze, so it rebuilds on any machine). Text equal to
    a built-in layout gets the built-in's name."""
    key = str(name_or_path)
    if "\n" in key:
        rows = tuple(line.rstrip() for line in key.strip("\n").splitlines())
        name = next((b for b in builtin_layouts() if load_layout(b).rows == rows), "<text>")
        return parse_layout(key, name, cell_size)
    if key in builtin_layouts():
        text = (resources.files("crl.envs") / "layouts" / f"{key}.txt").read_text()
        return parse_layout(text, key, cell_size)
    path = Path(key).expanduser()
    if not path.is_file():
        raise LayoutError(
            f"unknown layout {key!r}: not a built-in ({', '.join(builtin_layouts())}) and no such file"
        )
    return parse_layout(path.read_text(), str(path), cell_size)
