"""MJCF text for the maze worlds: wall geometry from a layout plus the point-mass body.

Walls are merged into as few boxes as possible (maximal horizontal runs of wall cells, then identical runs stacked
vertically) so the collision pass checks few geom pairs. Walls have contype 0, so they never collide with
each other or the floor; the agent geoms whose contype shares a bit with the walls' conaffinity collide with them.
"""

from __future__ import annotations

from crl.envs.maze import Maze


def wall_rectangles(maze: Maze) -> list[tuple[int, int, int, int]]:
    """Cover the wall cells with axis-aligned rectangles (r0, c0, r1, c1), inclusive, without overlap."""
    n_rows, n_cols = maze.shape
    runs: list[tuple[int, int, int]] = []  # (row, c0, c1)
    for r in range(n_rows):
        c = 0
        while c < n_cols:
            if maze.rows[r][c] == "#":
                c1 = c
                while c1 + 1 < n_cols and maze.rows[r][c1 + 1] == "#":
                    c1 += 1
                runs.append((r, c, c1))
                c = c1 + 1
            else:
                c += 1
    rects: list[list[int]] = []
    open_by_span: dict[tuple[int, int], list[int]] = {}
    for r, c0, c1 in runs:
        rect = open_by_span.get((c0, c1))
        if rect is not None and rect[2] == r - 1:
            rect[2] = r
        else:
            rect = [r, c0, r, c1]
            rects.append(rect)
            open_by_span[(c0, c1)] = rect
    return [(a, b, c, d) for a, b, c, d in rects]


def wall_geoms_xml(
    maze: Maze, height: float, condim: int = 3, conaffinity: int = 1, rgba: str = "0.7 0.5 0.3 1"
) -> str:
    """<geom> boxes for the walls, `height` tall, standing on z = 0 (condim 1: frictionless walls); geoms whose
    contype shares a bit with `conaffinity` collide with them."""
    s = maze.cell_size
    out = []
    for i, (r0, c0, r1, c1) in enumerate(wall_rectangles(maze)):
        cx, cy = (r0 + r1) / 2 * s, (c0 + c1) / 2 * s
        hx, hy = (r1 - r0 + 1) * s / 2, (c1 - c0 + 1) * s / 2
        out.append(
            f'<geom name="wall{i}" type="box" pos="{cx:g} {cy:g} {height / 2:g}" '
            f'size="{hx:g} {hy:g} {height / 2:g}" contype="0" conaffinity="{conaffinity}" condim="{condim}" '
            f'rgba="{rgba}"/>'
        )
    return "\n    ".join(out)


def point_xml(maze: Maze, radius: float = 0.4, gear: float = 15.0, damping: float = 5.0) -> str:
    """A unit-mass sphere on two slide joints (x, y), no gravity, frictionless contacts (condim 1) with the walls.

    Motors apply up to `gear` N per axis against joint damping `damping`, so the top speed is gear / damping
    (3 units/s) and the velocity time constant 1 / damping (0.2 s).
    """
    r0, c0 = maze.start_cells()[0]
    s = maze.cell_size
    return f"""
<mujoco model="point_{maze.name}">
  <compiler angle="radian" autolimits="true"/>
  <option gravity="0 0 0"/>
  <worldbody>
    {wall_geoms_xml(maze, height=1.0, condim=1)}
    <body name="agent" pos="0 0 {radius:g}">
      <joint name="x" type="slide" axis="1 0 0" damping="{damping:g}" ref="0"/>
      <joint name="y" type="slide" axis="0 1 0" damping="{damping:g}" ref="0"/>
      <geom name="ball" type="sphere" size="{radius:g}" mass="1" contype="1" conaffinity="0" condim="1"
            rgba="0.2 0.4 0.9 1"/>
    </body>
  </worldbody>
  <actuator>
    <motor name="fx" joint="x" gear="{gear:g}" ctrlrange="-1 1"/>
    <motor name="fy" joint="y" gear="{gear:g}" ctrlrange="-1 1"/>
  </actuator>
  <keyframe>
    <key name="start" qpos="{r0 * s:g} {c0 * s:g}"/>
  </keyframe>
</mujoco>
"""
