"""Coverage maps (`crl-data show ID --map`): counts checked against this file's own cell arithmetic, for a
collected, an imported (OGBench without a maze, Minari) and a split version; bad input is one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import ORACLE_COLLECT
from test_eval_split import CORRIDOR, _parent
from test_ogbench import write_ogbench_npz

from crl.datasets import DatasetStore
from crl.datasets.stitch_split import stitch_split
from crl.pipelines.cli import main
from crl.pipelines.coverage import compute_coverage


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_map_of_a_walk_and_its_split(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = DatasetStore()
    parent = _parent(store)  # a walk along the U's corridor: 5 states per cell boundary
    cov = compute_coverage(store, parent)
    cs = cov.maze.cell_size
    xy = store.open(parent).load(["achieved_goal"])["achieved_goal"]
    cells = [tuple(int(v) for v in np.floor(p / cs + 0.5)) for p in xy]  # all points are inside free cells
    want = np.array([cells.count(c) for c in cov.free_cells])
    np.testing.assert_array_equal(cov.cell_counts, want)
    assert set(cov.free_cells) == set(CORRIDOR) and cov.fraction_visited == 1.0
    p = want / want.sum()
    assert cov.entropy == pytest.approx(-(p * np.log2(p)).sum() / np.log2(7))
    assert cov.hist.sum() == 30 and cov.episode_lengths.tolist() == [30]
    np.testing.assert_allclose(cov.starts, xy[:1])

    split = stitch_split(store, parent, 2)
    scov = compute_coverage(store, split["id"])
    seg = store.open(split["id"])
    assert scov.kind == "split" and scov.hist.sum() == split["totals"]["transitions"]
    assert scov.episode_lengths.tolist() == np.diff(seg.episode_offsets).tolist()
    assert int((~scov.tasks["in_distribution"]).sum()) == split["split"]["test_tasks"]

    for did, name in ((parent, "walk.png"), (split["id"], "split.png")):
        code, out, err = run(capsys, "show", did, "--map", str(tmp_path / name))
        assert code == 0 and png(tmp_path / name), err
        assert f"map          {tmp_path / name}: 7/7 free cells visited (100%)" in out


def test_map_of_imports_with_and_without_a_maze(data_root: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write_ogbench_npz(tmp_path / "o.npz", [40, 60], seed=2)
    assert run(capsys, "import", "ogbench", str(tmp_path / "o.npz"), "--dataset", "ogb/o")[0] == 0
    cov = compute_coverage(DatasetStore(), "ogb/o-v0")  # an unknown env: the histogram alone, bounds from data
    xy = DatasetStore().open("ogb/o-v0").load(["achieved_goal"])["achieved_goal"]
    assert cov.maze is None and cov.cell_counts is None and cov.hist.sum() == 100
    assert cov.extent[0] < xy[:, 0].min() and cov.extent[1] > xy[:, 0].max()
    code, out, _ = run(capsys, "show", "ogb/o-v0", "--map", str(tmp_path / "o.png"))
    assert code == 0 and png(tmp_path / "o.png") and "no maze layout" in out

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    parent = _parent(DatasetStore())
    assert run(capsys, "export", "minari", parent, "--minari-id", "cov/walk-v0")[0] == 0
    code, out, _ = run(capsys, "import", "minari", "cov/walk-v0", "--dataset", "cov/walk")
    assert code == 0
    a, b = compute_coverage(DatasetStore(), parent), compute_coverage(DatasetStore(), out.strip())
    np.testing.assert_array_equal(a.cell_counts, b.cell_counts)  # the Minari round trip keeps the maze


def test_map_of_a_collected_version(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    from crl.pipelines.collection import run_collection

    config = replace(ORACLE_COLLECT, dataset="cov/oracle", env_steps=3_200)  # the shapes test_collect compiles
    did = run_collection(config, DatasetStore(), show_progress=False)["id"]
    cov = compute_coverage(DatasetStore(), did)
    assert cov.hist.sum() == 3_200 and cov.cell_counts.sum() == 3_200
    assert cov.episode_lengths.sum() == 3_200 and len(cov.starts) == cov.episodes
    assert 0 < cov.fraction_visited <= 1 and 0 < cov.entropy <= 1
    code, _, err = run(capsys, "show", did, "--map", str(tmp_path / "c.png"))
    assert code == 0 and png(tmp_path / "c.png"), err


@pytest.mark.parametrize("target, needle", [
    ("missing/m.png", "does not exist"),
    ("file.txt/m.png", "does not exist"),
    ("m.txt", "give a .png"),
])
def test_bad_map_paths_and_ids_are_one_line(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            target: str, needle: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    parent = _parent(DatasetStore())
    code, _, err = run(capsys, "show", parent, "--map", str(tmp_path / target))
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err
    code, _, err = run(capsys, "show", "test/none-v0", "--map", str(tmp_path / "m.png"))
    assert code == 2 and "unknown dataset" in err and not (tmp_path / "m.png").exists()


def test_report_draws_the_coverage_of_the_dataset_a_run_trained_on(data_root: Path, tmp_path: Path) -> None:
    import json

    from crl.eval.report import ReportSettings, make_report

    parent = _parent(DatasetStore())
    run = tmp_path / "offline-run"  # an offline run's records (config.json, metrics.jsonl), no checkpoint needed
    run.mkdir()
    spec = DatasetStore().manifest(parent)["env_spec"]
    (run / "config.json").write_text(json.dumps({"kind": "offline", "offline": {"dataset": parent,
                                                                                "env_spec": spec}}))
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "sgd_steps": 10, "eval/success": 0.5}) + "\n")
    twin = tmp_path / "offline-run-2"  # a second learner on the same dataset shares the first one's map
    twin.mkdir()
    for name in ("config.json", "metrics.jsonl"):
        (twin / name).write_text((run / name).read_text())
    rep = make_report([run, twin], tmp_path / "rep", ReportSettings(evaluators=("goals",)))
    html = rep.html.read_text()
    assert "dataset coverage" in html and f"coverage of {parent}" in html and "free cells visited: 7/7" in html
    maps = list((tmp_path / "rep" / "images").glob("coverage_*.png"))
    assert len(maps) == 1 and png(maps[0]) and html.count(f'alt="coverage of {parent}') == 1
    assert f"{parent}: the dataset of offline-run, mapped there" in html
