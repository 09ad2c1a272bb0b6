"""Every option of every `crl-train`, `crl-data` and `crl-eval` command is honoured or refused.

The walk enumerates the real click groups (commands registered as the console scripts register them) and needs an
entry for each option; an option without one fails `test_every_option_has_an_entry`, so a new option gets covered
when it is added. Entries:

- `Config(args, expect)`: the command given `args` (a non-default value) and `--print-config` prints the resolved
  config (what the run records in config.json, or a collection in its manifest); every `field: value` of `expect`
  must be in it (found at any depth). The walk checks these for real, one option at a time.
- `Refused(args, match)`: the command given `args` exits 2 with one line naming the problem (checked for real).
- `Covered(test)`: a test elsewhere runs the command with this option and asserts its effect on the output (the
  evaluators and dataset commands, whose runs are too heavy to repeat here); the walk checks that the test exists
  and passes the option.
- `Gap(note)`: no test checks it yet. Their number may only go down (MAX_GAPS).

To add an option: a config field exposed by crl.config_options needs one line in FIELD_VALUES (its option and a
non-default value); any other option needs a line in TABLE under `"<prog> <command>"` (or in REFUSED).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
from conftest import TINY_TRAIN

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Config:
    args: tuple[str, ...]
    expect: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refused:
    args: tuple[str, ...]
    match: str


@dataclass(frozen=True)
class Gap:
    note: str
    """Why no test checks this option yet; the count of gaps may only go down (test_gaps_only_shrink)."""


@dataclass(frozen=True)
class Covered:
    test: str
    """`tests/test_x.py::test_name`."""


# ---- config fields (crl.config_options): option args and the value they must record ------------------------------
FIELD_VALUES: dict[str, tuple[tuple[str, ...], Any]] = {
    "env": (("--env", "point_u4_maze"), "point_u4_maze"),
    "episode_length": (("--episode-length", "300"), 300),
    "num_envs": (("--num-envs", "8"), 8),
    "unroll_length": (("--unroll-length", "20"), 20),
    "replay_size": (("--replay-size", "2000000"), 2_000_000),
    "min_replay_size": (("--min-replay-size", "25600"), 25_600),
    "total_env_steps": (("--total-env-steps", "2560000"), 2_560_000),
    "stop_when_solved": (("--stop-when-solved", "3"), 3),
    "eval_every": (("--eval-every", "7"), 7),
    "num_eval_envs": (("--num-eval-envs", "16"), 16),
    "checkpoint_every": (("--checkpoint-every", "3"), 3),
    "seed": (("--seed", "5"), 5),
    "batch_size": (("--batch-size", "64"), 64),
    "sgd_steps": (("--sgd-steps", "8"), 8),
    "discount": (("--discount", "0.9"), 0.9),
    "actor_ema": (("--actor-ema", "0.5"), 0.5),
    "critic_goals": (("--critic-goals", "0,0.5,0.5"), "0,0.5,0.5"),
    "actor_goals": (("--actor-goals", "0,1,0,uniform"), "0,1,0,uniform"),
    "bc_alpha": (("--bc-alpha", "0.2"), 0.2),
    "depth": (("--depth", "8"), 8),
    "actor_depth": (("--actor-depth", "12"), 12),
    "width": (("--width", "64"), 64),
    "repr_dim": (("--repr-dim", "16"), 16),
    "layer_norm": (("--no-layer-norm",), False),
    "residual": (("--no-residual",), False),
    "activation": (("--activation", "relu"), "relu"),
    "energy": (("--energy", "dot"), "dot"),
    "symmetric_infonce": (("--symmetric-infonce",), True),
    "critic_loss": (("--critic-loss", "td"), "td"),
    "target_tau": (("--target-tau", "0.01"), 0.01),
    "logsumexp_penalty": (("--logsumexp-penalty", "0.5"), 0.5),
    "init_scale": (("--init-scale", "0.5"), 0.5),
    "scan_blocks": (("--scan-blocks",), True),
    "actor_lr": (("--actor-lr", "1e-05"), 1e-5),
    "critic_lr": (("--critic-lr", "2e-05"), 2e-5),
    "alpha_lr": (("--alpha-lr", "3e-05"), 3e-5),
    "target_entropy_per_dim": (("--target-entropy-per-dim", "-1.0"), -1.0),
    "log_std_min": (("--log-std-min", "-4.0"), -4.0),
    "log_std_max": (("--log-std-max", "1.0"), 1.0),
    "window": (("--window", "5000"), 5000),
    "eval_env": (("--eval-env", "point_u_maze"), "point_u_maze"),
    "ogbench_episodes": (("--ogbench-episodes", "7"), 7),
    "split_episodes_per_pair": (("--split-episodes-per-pair", "3"), 3),
}

SOURCE_SHAPED = ("depth", "actor_depth", "width", "repr_dim", "layer_norm", "residual", "activation", "energy",
                 "scan_blocks")
"""crl.finetune.SOURCE_FIELDS: a fine-tune refuses them (they come from --from)."""

# ---- every other option, per command ---------------------------------------------------------------------------
_EVAL_GAP = Gap("the evaluators' shared options are checked on `goals` only")
_MINARI_GAP = Gap("no CLI test passes it yet (crl.datasets.minari_io)")
_OGBENCH_GAP = Gap("no CLI test passes it yet (OGBench generator)")
_DASK_TEST = "tests/test_collect.py::test_dask_budget_shorter_than_an_episode_commits_every_step_quietly"
_LR = {"actor_lr": 1e-5, "critic_lr": 1e-5, "alpha_lr": 1e-5}
_ONLINE: dict[str, Any] = {
    "--lr": Config(("--lr", "1e-5"), _LR),
    "--train-env": Config(("--train-env", "start_cells=free"), {"train_env_overrides": {"start_cells": "free"}}),
    "--preset": Config(("--preset", "paper"), {"num_envs": 512, "unroll_length": 62}),
    "--resume": Covered("tests/test_checkpoint.py::test_round_trip_and_resume_give_identical_parameters"),
    "--out": Covered("tests/test_checkpoint.py::test_cli_online_smoke_and_user_errors"),
    "--no-progress": Covered("tests/test_checkpoint.py::test_cli_online_smoke_and_user_errors"),
    "--print-config": Covered("tests/test_options.py::test_config_options_reach_the_resolved_config"),
    "--critic-loss": Refused(("--critic-loss", "td"), "trains from datasets only"),
}
TABLE: dict[str, dict[str, Any]] = {
    "crl-train online": _ONLINE,
    "crl-train finetune": {
        **_ONLINE,
        "--resume": Covered("tests/test_options.py::test_finetune_honours_optimiser_and_loss_options"),
        "--out": Covered("tests/test_options.py::test_finetune_honours_optimiser_and_loss_options"),
        "--no-progress": Covered("tests/test_options.py::test_finetune_honours_optimiser_and_loss_options"),
        "--from": Covered("tests/test_options.py::test_finetune_honours_optimiser_and_loss_options"),
        "--dataset": Config(("--dataset", "t/x-v0"), {"dataset": "t/x-v0"}),
        "--offline-ratio": Config(("--dataset", "t/x-v0", "--offline-ratio", "0.25"), {"offline_ratio": 0.25}),
        "--bc-decay-steps": Config(("--bc-decay-steps", "100"), {"bc_decay_steps": 100}),
    },
    "crl-train offline": {
        "--dataset": Config((), {"dataset": "t/x-v0"}),
        "--depth": Config(("--depth", "8"), {"depth": 8}),
        "--seed": Config(("--seed", "4"), {"seed": 4}),
        "--steps": Config(("--steps", "1234"), {"total_sgd_steps": 1234}),
        "--bc-preset": Config(("--bc-preset", "antmaze"), {"bc_alpha": 0.1}),
        "--lr": Config(("--lr", "1e-5"), _LR),
        "--workers": Gap("run_learners(workers=2) is tested through the API"),
        "--scheduler": Refused(("--scheduler", "tcp://127.0.0.1:1", "--workers", "2"), "give one of them"),
        "--resume": Covered("tests/test_offline.py::test_kill_9_then_resume_gives_the_uninterrupted_metrics"),
        "--out": Covered("tests/test_offline.py::test_kill_9_then_resume_gives_the_uninterrupted_metrics"),
        "--no-progress": Covered("tests/test_offline.py::test_kill_9_then_resume_gives_the_uninterrupted_metrics"),
        "--print-config": Covered("tests/test_options.py::test_config_options_reach_the_resolved_config"),
    },
    "crl-data collect": {
        "--env": Config(("--env", "point_u4_maze"), {"env": "point_u4_maze"}),
        "--collector-depth": Config(("--collector-depth", "8"), {"collector_depth": 8}),
        "--width": Config(("--width", "64"), {"width": 64}),
        "--policy": Config(("--policy", "random"), {"policy": "random"}),
        "--deterministic": Config(("--policy", "checkpoint:/x", "--deterministic"), {"deterministic": True}),
        "--action-noise": Config(("--policy", "random", "--action-noise", "0.2"), {"action_noise": 0.2}),
        "--goal-schedule": Config(("--goal-schedule", "navigate"), {"goal_schedule": "navigate"}),
        "--env-steps": Config(("--env-steps", "1234"), {"env_steps": 1234}),
        "--dataset": Config(("--dataset", "t/y"), {"dataset": "t/y"}),
        "--num-envs": Config(("--num-envs", "8"), {"num_envs": 8}),
        "--unroll-length": Config(("--unroll-length", "20"), {"unroll_length": 20}),
        "--episode-length": Config(("--episode-length", "40"), {"episode_length": 40}),
        "--batch-size": Config(("--batch-size", "64"), {"train_overrides": {"batch_size": 64}}),
        "--sgd-steps": Config(("--sgd-steps", "8"), {"train_overrides": {"sgd_steps": 8}}),
        "--preset": Config(("--preset", "paper"), {"preset": "paper"}),
        "--seed": Config(("--seed", "5"), {"seed": 5}),
        "--shard-rows": Config(("--shard-rows", "1000"), {"shard_rows": 1000}),
        "--checkpoint-every": Config(("--checkpoint-every", "3"), {"checkpoint_every": 3}),
        "--eval-every": Config(("--eval-every", "3"), {"eval_every": 3}),
        "--workers": Config(("--workers", "2"), {"workers": 2}),
        "--scheduler": Gap("no test joins an existing scheduler"),
        "--resume": Covered("tests/test_collect.py::test_sigkill_then_resume_gives_the_uninterrupted_data"),
        "--progress": Covered("tests/test_collect.py::test_sigkill_then_resume_gives_the_uninterrupted_data"),
        "--checkpoints": Config(("--checkpoints", "bucket"), {"checkpoints": "bucket"}),
        "--dask-log": Covered(_DASK_TEST),
        "--print-config": Covered("tests/test_options.py::test_config_options_reach_the_resolved_config"),
    },
    "crl-data list": {"--all": Covered("tests/test_cli_data.py::test_existing_staging_version_is_refused")},
    "crl-data show": {"--json": Covered("tests/test_cli_data.py::test_list_show_verify_rm"),
                      "--map": Covered("tests/test_coverage.py::test_map_of_a_walk_and_its_split")},
    "crl-data verify": {"--scheduler": Gap("tested through the API (a LocalCluster's address)")},
    "crl-data rm": {"--yes": Covered("tests/test_split.py::test_lineage_verify_and_rm"),
                    "--force": Covered("tests/test_race.py::test_rm_force_removes_a_live_writers_staging")},
    "crl-data copy": {"--to": Covered("tests/test_s3.py::test_copy_both_ways_with_lineage")},
    "crl-data export minari": {
        "--minari-id": Covered("tests/test_cli_data.py::test_import_ogbench_with_val_and_minari_round_trip"),
        "--format": _MINARI_GAP,
        "--author": _MINARI_GAP,
        "--author-email": _MINARI_GAP,
        "--code-permalink": _MINARI_GAP,
        "--description": _MINARI_GAP,
    },
    "crl-data import minari": {
        "--dataset": Covered("tests/test_split.py::test_lineage_verify_and_rm"),
        "--goal-indices": _MINARI_GAP,
        "--goal-dims": _MINARI_GAP,
        "--success-threshold": _MINARI_GAP,
        "--parent": _MINARI_GAP,
    },
    "crl-data import ogbench": {
        "--dataset": Covered("tests/test_s3.py::test_every_data_command_on_s3"),
        "--goal-indices": _OGBENCH_GAP,
        "--success-threshold": _OGBENCH_GAP,
        "--env-name": _OGBENCH_GAP,
        "--val": _OGBENCH_GAP,
    },
    "crl-data generate ogbench": {
        "--dataset": Covered("tests/test_s3.py::test_every_data_command_on_s3"),
        "--episodes": Covered("tests/test_eval_ogbench.py::test_goals_cli_ogbench_branch"),
        "--episode-steps": _OGBENCH_GAP,
        "--noise": _OGBENCH_GAP,
        "--seed": _OGBENCH_GAP,
    },
    "crl-data split stitch": {
        "--max-cells": Covered("tests/test_split.py::test_lineage_verify_and_rm"),
        "--dataset": Covered("tests/test_split.py::test_lineage_verify_and_rm"),
        "--min-length": Gap("split stitch --min-length: tested through the API only"),
    },
    "crl-eval goals": {
        "--policy": Covered("tests/test_eval_cli.py::test_goals_reproduces_the_trainers_final_evaluation"),
        "--step": Covered("tests/test_eval_cli.py::test_checkpoint_errors_exit_2"),
        "--out": Covered("tests/test_eval_report.py::test_report_two_runs_html_markdown_and_cache"),
        "--json": Covered("tests/test_eval_cli.py::test_goals_reproduces_the_trainers_final_evaluation"),
        "--env": Covered("tests/test_eval_cli.py::test_checkpoint_errors_exit_2"),
        "--episodes": Covered("tests/test_eval_cli.py::test_goals_reproduces_the_trainers_final_evaluation"),
        "--seed": Covered("tests/test_eval_cli.py::test_goals_reproduces_the_trainers_final_evaluation"),
        "--episode-length": Covered("tests/test_eval_ogbench.py::test_goals_cli_ogbench_branch"),
        "--plan-waypoints": Covered(
            "tests/test_eval_ogbench.py::test_planning_evaluates_a_trained_run_and_refuses_what_it_cannot_plan"),
    },
    "crl-eval stitching": {
        "--policy": Covered("tests/test_eval_cli.py::test_geodesic_and_stitching_of_a_checkpoint"),
        "--step": _EVAL_GAP,
        "--out": Covered("tests/test_eval_cli.py::test_geodesic_and_stitching_of_a_checkpoint"),
        "--json": Covered("tests/test_eval_cli.py::test_geodesic_and_stitching_of_a_checkpoint"),
        "--env": _EVAL_GAP,
        "--split": Gap("stitching --split: tested through the API only"),
        "--episodes-per-pair": _EVAL_GAP,
        "--max-pairs-per-distance": Covered("tests/test_eval_cli.py::test_geodesic_and_stitching_of_a_checkpoint"),
        "--max-cells": Covered("tests/test_eval_cli.py::test_geodesic_and_stitching_of_a_checkpoint"),
        "--seed": _EVAL_GAP,
        "--episode-length": _EVAL_GAP,
    },
    "crl-eval geodesic": {
        "--policy": Covered("tests/test_eval_cli.py::test_geodesic_and_stitching_of_a_checkpoint"),
        "--step": Covered("tests/test_eval_cli.py::test_checkpoint_errors_exit_2"),
        "--out": Covered("tests/test_eval_cli.py::test_geodesic_and_stitching_of_a_checkpoint"),
        "--json": Covered("tests/test_eval_cli.py::test_geodesic_and_stitching_of_a_checkpoint"),
        "--env": Covered("tests/test_eval_cli.py::test_checkpoint_errors_exit_2"),
        "--pairs": Covered("tests/test_eval_cli.py::test_geodesic_and_stitching_of_a_checkpoint"),
        "--goal": Covered("tests/test_eval_cli.py::test_geodesic_and_stitching_of_a_checkpoint"),
        "--seed": _EVAL_GAP,
        "--bootstrap": Covered("tests/test_eval_cli.py::test_geodesic_and_stitching_of_a_checkpoint"),
    },
    "crl-eval report": {
        **{opt: Covered("tests/test_eval_report.py::test_report_options_reach_the_recorded_settings")
           for opt in ("--out", "--evaluators", "--step", "--episodes", "--seed", "--episodes-per-pair",
                       "--max-pairs-per-distance", "--geodesic-pairs", "--bootstrap", "--ogbench-max-steps",
                       "--cache-dir", "--title", "--progress")},
        "--workers": Gap("the Dask fan-out is tested with a client passed in (test_report_fans_out_on_dask)"),
        "--scheduler": Gap("no test joins an existing scheduler"),
    },
}
for _name in SOURCE_SHAPED:
    _flag = "--" + _name.replace("_", "-")
    TABLE["crl-train finetune"][_flag] = Refused(FIELD_VALUES[_name][0], "comes from the source run")


MAX_GAPS = 29
"""Options still without a check (Gap entries): lower it when you cover one; never raise it."""


def _groups() -> dict[str, click.Group]:
    from crl.cli_train import cli as train
    from crl.eval import cli as eval_cli
    from crl.pipelines import cli as data_cli

    data_cli.register_commands()
    eval_cli.register_commands()
    return {"crl-train": train, "crl-data": data_cli.cli, "crl-eval": eval_cli.cli}


def _options() -> list[tuple[str, str, click.Option]]:
    """(command path, first flag, option) for every option of every command (help flags left out)."""
    out = []

    def walk(group: click.Group, prefix: str) -> None:
        for name, cmd in group.commands.items():
            if isinstance(cmd, click.Group):
                walk(cmd, f"{prefix} {name}")
            else:
                out.extend((f"{prefix} {name}", p.opts[0], p) for p in cmd.params if isinstance(p, click.Option))

    for prog, group in _groups().items():
        walk(group, prog)
    return out


def _entry(command: str, flag: str, option: click.Option) -> Any:
    if flag in TABLE.get(command, {}):
        return TABLE[command][flag]
    if command.startswith("crl-train") and option.name in FIELD_VALUES:
        args, value = FIELD_VALUES[option.name]
        return Config(args, {option.name: value})
    return None


def test_every_option_has_an_entry() -> None:
    missing = [f"{c} {f}" for c, f, o in _options() if _entry(c, f, o) is None]
    assert not missing, f"options without an entry in tests/test_options.py (see its docstring): {missing}"


def _find(tree: Any, key: str) -> list[Any]:
    found = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key:
                found.append(v)
            found.extend(_find(v, key))
    return found


def _run(prog: str, argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    from crl.cli_train import main as train_main
    from crl.eval.cli import main as eval_main
    from crl.pipelines.cli import main as data_main

    main = {"crl-train": train_main, "crl-data": data_main, "crl-eval": eval_main}[prog]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.fixture(scope="module")
def source_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run folder to fine-tune from (its initial state checkpointed): non-default loss and optimiser values,
    so a fine-tune that does not give them must keep them."""
    import jax

    from crl import checkpoint
    from crl.train import Trainer

    config = TINY_TRAIN.replace(logsumexp_penalty=0.3, critic_lr=1e-4)
    trainer = Trainer(config)
    run = tmp_path_factory.mktemp("source") / "run"
    checkpoint.save(checkpoint.manager(run), 1, trainer.init(jax.random.PRNGKey(0)),
                    {"kind": "online", "config": config.to_dict(), "env_spec": trainer.env.spec.to_dict(), "epoch": 1})
    return run


def _base(command: str, tmp_path: Path, source_run: Path) -> list[str]:
    sub = command.split(" ", 1)[1].split()
    base = {"online": ["--out", str(tmp_path / "o")],
            "offline": ["--dataset", "t/x-v0", "--out", str(tmp_path / "o")],
            "finetune": ["--from", str(source_run), "--out", str(tmp_path / "o")],
            "collect": []}
    return [*sub, *base[sub[0]]]


def test_config_options_reach_the_resolved_config(tmp_path: Path, source_run: Path, data_root: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    wrong = []
    for command, flag, option in _options():
        entry = _entry(command, flag, option)
        if not isinstance(entry, Config):
            continue
        prog = command.split(" ", 1)[0]
        argv = [*_base(command, tmp_path, source_run), *entry.args, "--print-config"]
        code, out, err = _run(prog, argv, capsys)
        if code != 0:
            wrong.append(f"{command} {flag}: exit {code}: {err.strip()}")
            continue
        printed = json.loads(out)
        for key, want in entry.expect.items():
            if want not in _find(printed, key):
                wrong.append(f"{command} {flag}: {key}={want!r} not in the resolved config ({_find(printed, key)})")
    assert not wrong, "\n".join(wrong)
    assert not list(data_root.iterdir()) and not (tmp_path / "o").exists()  # --print-config writes nothing


def test_refused_options_exit_2_with_one_line(tmp_path: Path, source_run: Path, capsys: pytest.CaptureFixture,
                                              ) -> None:
    checked = 0
    for command, flag, option in _options():
        entry = _entry(command, flag, option)
        if not isinstance(entry, Refused):
            continue
        prog = command.split(" ", 1)[0]
        code, _, err = _run(prog, [*_base(command, tmp_path, source_run), *entry.args, "--print-config"], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and entry.match in lines[0], (command, flag, err)
        checked += 1
    assert checked >= len(SOURCE_SHAPED)


def test_collect_refuses_options_its_policy_ignores(capsys: pytest.CaptureFixture) -> None:
    for args in (["--policy", "random", "--batch-size", "64"], ["--policy", "oracle", "--width", "64"],
                 ["--action-noise", "0.2"], ["--deterministic"], ["--policy", "random", "--deterministic"],
                 ["--dask-log", "info"]):
        code, _, err = _run("crl-data", ["collect", *args, "--print-config"], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, (args, err)


def test_covered_options_name_a_test_that_passes_them() -> None:
    texts: dict[str, str] = {}
    wrong = []
    for command, flag, option in _options():
        entry = _entry(command, flag, option)
        if not isinstance(entry, Covered):
            continue
        path, name = entry.test.split("::")
        if path not in texts:
            file = ROOT.parent / path
            texts[path] = file.read_text() if file.exists() else ""
        names = {n.name for n in ast.parse(texts[path]).body if isinstance(n, ast.FunctionDef)}
        flags = [*option.opts, *option.secondary_opts]
        if name not in names:
            wrong.append(f"{command} {flag}: {entry.test} does not exist")
        elif not any(f'"{f}"' in texts[path] for f in flags):  # in the test or the argument lists it uses
            wrong.append(f"{command} {flag}: {path} never passes {'/'.join(flags)}")
    assert not wrong, "\n".join(wrong)


def test_finetune_honours_optimiser_and_loss_options(source_run: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    """The issue's case: `--lr 1e-5 --logsumexp-penalty 0.5` reach the fine-tune's config and its runner; options
    not given keep the source run's values (its networks, and its loss and optimiser settings)."""
    from crl.finetune import FinetuneConfig, FinetuneRunner

    out = tmp_path / "ft"
    base = ["finetune", "--from", str(source_run), "--out", str(out), "--no-progress"]
    code, text, err = _run("crl-train", [*base, "--lr", "1e-5", "--logsumexp-penalty", "0.5", "--print-config"],
                           capsys)
    assert code == 0, err
    agent = json.loads(text)["learner"]["agent"]
    assert agent["actor_lr"] == agent["critic_lr"] == 1e-5 and agent["logsumexp_penalty"] == 0.5
    assert agent["width"] == TINY_TRAIN.agent.width and agent["depth"] == TINY_TRAIN.agent.depth
    runner = FinetuneRunner(FinetuneConfig.from_dict(json.loads(text)))  # what the run itself uses
    assert runner.config.agent.logsumexp_penalty == 0.5 and runner.config.agent.actor_lr == 1e-5
    assert runner.config.agent.width == TINY_TRAIN.agent.width
    code, text, err = _run("crl-train", [*base, "--print-config"], capsys)
    agent = json.loads(text)["learner"]["agent"]
    assert code == 0 and agent["logsumexp_penalty"] == 0.3 and agent["critic_lr"] == 1e-4
    code, _, err = _run("crl-train", [*base, "--resume", "--print-config"], capsys)
    assert code == 0, err


def test_gaps_only_shrink() -> None:
    gaps = [f"{c} {f}" for c, f, o in _options() if isinstance(_entry(c, f, o), Gap)]
    assert len(gaps) <= MAX_GAPS, f"{len(gaps)} options without a check (at most {MAX_GAPS}): {gaps}"
