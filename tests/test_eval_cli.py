"""`crl-eval` end to end on a real (tiny) checkpoint: goals reproduces the trainer's logged evaluation, geodesic
and stitching write JSON and valid PNGs, and every user error exits 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_TRAIN, console_script
from PIL import Image

from crl.eval.cli import main
from crl.metrics import read_jsonl
from crl.train import run

TINY = TINY_TRAIN.replace(total_env_steps=120)  # 3 epochs


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_trainer) -> Path:
    out = tmp_path_factory.mktemp("evalcli") / "run"
    run(TINY, None, out, progress=False, trainer=tiny_trainer)
    return out


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def _png_ok(path: str | Path) -> None:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert 200 <= min(im.size) and max(im.size) <= 2000


def test_goals_reproduces_the_trainers_final_evaluation(run_dir: Path, capsys) -> None:
    code, out, err = _cli(capsys, "goals", "--policy", f"checkpoint:{run_dir}", "--json")
    assert code == 0, err
    r = json.loads(out)
    logged = read_jsonl(run_dir / "metrics.jsonl")[-1]
    assert logged["epoch"] == 3 and r["checkpoint_step"] == 3
    for k in ("eval/success", "eval/time_at_goal", "eval/final_dist"):
        assert r[k] == pytest.approx(logged[k], rel=1e-6, abs=1e-6), k
    assert r["episodes"] == TINY.num_eval_envs and r["env"] == "point_u_maze" and r["episode_length"] == 30
    assert r["key"] == "trainer: fold_in(PRNGKey(0 + 1), 3)" and r["code_version"].startswith("0.")
    assert Path(r["json"]) == run_dir / "eval" / "goals.json" and json.loads(Path(r["json"]).read_text())["run"]
    _png_ok(r["png"])
    # an explicit seed is another key (PRNGKey(seed)); the text output has the per-goal-cell table
    code, out, _ = _cli(capsys, "goals", "--policy", f"checkpoint:{run_dir}", "--seed", "5", "--episodes", "4",
                        "--out", str(run_dir / "eval5"))
    assert code == 0 and "key PRNGKey(5)" in out and "(3, 1)" in out and "success" in out
    assert json.loads((run_dir / "eval5" / "goals.json").read_text())["seed"] == 5


def test_geodesic_and_stitching_of_a_checkpoint(run_dir: Path, tmp_path: Path, capsys) -> None:
    code, out, err = _cli(capsys, "geodesic", "--policy", f"checkpoint:{run_dir}", "--pairs", "300",
                          "--bootstrap", "50", "--goal", "1,3", "--out", str(tmp_path))
    assert code == 0, err
    r = json.loads((tmp_path / "geodesic.json").read_text())
    assert r["pairs"] == 300 and -1 <= r["rho_geo"] <= 1 and -1 <= r["rho_euc"] <= 1
    assert r["index"] == pytest.approx(r["rho_geo"] - r["rho_euc"])
    assert r["heatmap_goal_cell"] == [1, 3] and r["wall_pairs"]["pairs"] > 10
    assert "rho_geo" in out and "wall pairs" in out
    _png_ok(tmp_path / "geodesic.png")

    code, out, err = _cli(capsys, "stitching", "--policy", f"checkpoint:{run_dir}", "--max-pairs-per-distance",
                          "1", "--max-cells", "2", "--out", str(tmp_path), "--json")
    assert code == 0, err
    r = json.loads(out)
    assert [row["pairs"] for row in r["success_by_distance"]] == [1] * 6
    assert r["env"] == "point_u_maze" and r["in_distribution"]["pairs"] == 2
    _png_ok(tmp_path / "stitching.png")


@pytest.mark.parametrize("argv, message", [
    (["goals", "--policy", "checkpoint:/no/such/run"], "no run folder"),
    (["goals", "--policy", "bogus", "--env", "point_u_maze"], "unknown --policy"),
    (["goals", "--policy", "oracle", "--env", "point_nosuch_maze"], "unknown environment"),
    (["goals", "--policy", "oracle"], "needs --env"),
    (["goals", "--policy", "oracle", "--env", "ant_u_maze"], "point mazes only"),
    (["geodesic", "--policy", "random", "--env", "point_u_maze"], "checkpoint:RUN_DIR"),
    (["stitching", "--policy", "oracle", "--split", "nobody/nothing-v1"], "nothing"),
    (["stitching", "--policy", "oracle", "--env", "point_u_maze", "--episodes-per-pair", "0"], "episodes-per-pair"),
])
def test_user_errors_exit_2_with_one_line(argv: list[str], message: str, capsys, data_root: Path) -> None:
    code, out, err = _cli(capsys, *argv)
    assert code == 2 and err.startswith("crl-eval: error:") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_checkpoint_errors_exit_2(run_dir: Path, capsys) -> None:
    for argv, message in [
        (["goals", "--policy", f"checkpoint:{run_dir}", "--env", "ant_u_maze"], "does not fit"),
        (["geodesic", "--policy", f"checkpoint:{run_dir}", "--goal", "2,2"], "wall"),
        (["goals", "--policy", f"checkpoint:{run_dir}", "--step", "99"], "99"),
    ]:
        code, _, err = _cli(capsys, *argv)
        assert code == 2 and err.startswith("crl-eval: error:") and message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1


def test_console_script_is_installed() -> None:
    import subprocess

    cli = console_script("crl-eval")
    out = subprocess.run([cli, "--help"], capture_output=True, text=True, timeout=300, check=True).stdout
    assert all(name in out for name in ("goals", "stitching", "geodesic"))
    bad = subprocess.run([cli, "goals"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--policy" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
