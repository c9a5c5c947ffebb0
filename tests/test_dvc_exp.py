"""Integration: DVC metrics, plots and experiments.

One repository runs a small config with `dvc repro` and commits the result (the baseline):
config/test.yaml with only its main and ablation experiments (two cheap runs, so the test
stays short whatever else the tiny config grows). `dvc exp run -S '<config file>:<key>=<value>'`
then changes an evaluation-only key in the config file that dvc.yaml lists as params: only
evaluations and what is drawn from them may re-run, `dvc metrics diff` must show the changed
trial counts, `dvc exp show` must list the experiment, and `dvc plots show` / `dvc plots diff`
must render. A queued two-value sweep of a label-only key re-runs only tables (and figures).
"""

import csv
import io
import json
import re
import sys

import pytest
import yaml

from conftest import copy_repo, run

pytestmark = pytest.mark.slow

CF = "config/test_dvc_exp.yaml"
EXPERIMENTS = ("main", "ablation")
BENCH = "metaworld"
EXP = "fewer-episodes"
EPISODES = f"benchmarks.{BENCH}.eval_episodes_per_task"  # read by evaluation only
PAPER_NAME = "models.qwen25vl_tiny.paper_name"           # a label: only tables read it
SUMMARY = "results/eval/{}/{}/summary.json"


def _ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def _dvc_json(args: list[str], cwd) -> dict:
    return json.loads(run(["dvc", *args, "--json"], cwd=cwd).stdout)


def _dvc_csv(args: list[str], cwd) -> list[dict]:
    return list(csv.DictReader(io.StringIO(run(["dvc", *args, "--csv"], cwd=cwd).stdout)))


def _param(row: dict, key: str) -> str:
    """A param column of `dvc exp show --csv` (prefixed by the file only when ambiguous)."""
    return row[key] if key in row else row[f"{CF}:{key}"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A git repository whose HEAD holds dvc.yaml + dvc.lock of one `dvc repro`."""
    work = copy_repo(tmp_path_factory.mktemp("dvc_exp") / "repo")
    cfg = yaml.safe_load((work / "config/test.yaml").read_text())
    cfg["experiments"] = {k: v for k, v in cfg["experiments"].items() if k in EXPERIMENTS}
    assert cfg["benchmarks"][BENCH]["eval_episodes_per_task"] > 1
    (work / CF).write_text("# config/test.yaml with only the main and ablation experiments\n"
                           + yaml.safe_dump(cfg, sort_keys=False))
    run(["git", "init", "-q"], cwd=work)
    run(["git", "config", "user.name", "test"], cwd=work)  # experiments are git commits
    run(["git", "config", "user.email", "test@example.invalid"], cwd=work)
    run([sys.executable, "workflow_scripts/make_dvc_yaml.py", "--configfile", CF, "--out", "dvc.yaml"],
        cwd=work)
    run(["dvc", "repro"], cwd=work)
    run(["git", "add", "-A"], cwd=work)   # results/ is ignored: artifacts are DVC's
    run(["git", "commit", "-q", "-m", "baseline"], cwd=work)
    return work


@pytest.fixture(scope="module")
def baseline(repo) -> dict:
    """The committed config and the stages of the committed dvc.yaml."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    evals = sorted(s.split("-", 2)[2] for s in stages if s.startswith("evaluate-"))
    assert len(evals) >= 2, stages
    return {"cfg": yaml.safe_load((repo / CF).read_text()), "stages": set(stages), "evals": evals}


@pytest.fixture(scope="module")
def experiment(repo, baseline):
    """`dvc exp run -S` in the workspace (its results stay applied there); returns its output."""
    proc = run(["dvc", "exp", "run", "-n", EXP, "-S", f"{CF}:{EPISODES}=1"], cwd=repo)
    return proc.stdout + proc.stderr


def _trials(cfg: dict, episodes: int) -> int:
    return len(cfg["benchmarks"][BENCH]["tasks"]) * episodes


def test_set_param_edits_the_named_config_file_and_reruns_only_evaluation(repo, baseline, experiment):
    ran = _ran(experiment)
    evals = {f"evaluate-{BENCH}-{r}" for r in baseline["evals"]}
    assert evals <= ran, experiment
    assert not {s for s in ran if s.startswith(("prepare_demos", "finetune"))}, ran
    assert ran - evals <= {s for s in baseline["stages"] if s.startswith(("table_", "figure_"))}, ran
    text = (repo / CF).read_text()
    assert yaml.safe_load(text)["benchmarks"][BENCH]["eval_episodes_per_task"] == 1
    assert text.startswith("# config/test.yaml with only")  # DVC rewrites the YAML, keeps comments
    assert "up to date" in run(["dvc", "status"], cwd=repo).stdout


def test_set_param_needs_the_file_name(repo, experiment):
    # Without `<file>:` DVC edits params.yaml, which this project does not have.
    proc = run(["dvc", "exp", "run", "--dry", "-S", "train.steps=7"], cwd=repo, check=False)
    assert proc.returncode != 0
    assert "Could not override 'train.steps'" in proc.stdout + proc.stderr
    assert not (repo / "params.yaml").exists()


def test_metrics_show_and_diff(repo, baseline, experiment):
    old = _trials(baseline["cfg"], baseline["cfg"]["benchmarks"][BENCH]["eval_episodes_per_task"])
    new = _trials(baseline["cfg"], 1)
    (shown,) = [rev["data"] for rev in _dvc_json(["metrics", "show"], cwd=repo).values()]  # workspace
    for r in baseline["evals"]:
        assert shown[SUMMARY.format(BENCH, r)]["data"]["overall"]["n"] == new
    for revs in ([], ["HEAD", EXP]):  # HEAD vs workspace, and HEAD vs the experiment
        diff = _dvc_json(["metrics", "diff", *revs], cwd=repo)
        for r in baseline["evals"]:
            n = diff[SUMMARY.format(BENCH, r)]["overall.n"]
            assert (n["old"], n["new"]) == (old, new), (revs, n)


def test_exp_show_lists_the_experiment(repo, baseline, experiment):
    rows = _dvc_csv(["exp", "show"], cwd=repo)
    ours = [r for r in rows if r["Experiment"] == EXP]
    assert len(ours) == 1, rows
    assert _param(ours[0], EPISODES) == "1"
    r = baseline["evals"][0]
    assert ours[0][f"{SUMMARY.format(BENCH, r)}:overall.n"] == str(_trials(baseline["cfg"], 1))


def test_plots_show_and_diff(repo, baseline, experiment, tmp_path):
    out = tmp_path / "plots"
    run(["dvc", "plots", "show", "-o", str(out)], cwd=repo)
    html = (out / "index.html").read_text()
    assert "vega" in html and '<img src="static/workspace_results_figures_main.png">' in html
    diff = _dvc_json(["plots", "diff", "HEAD", EXP, "-o", str(tmp_path / "diff")], cwd=repo)
    assert not diff.get("errors"), diff["errors"]
    plots = diff["data"]
    assert len(plots["results/figures/main.png"]) == 2          # one image per revision
    bars = plots["success rate per run (main table)"][0]
    assert bars["type"] == "vega" and bars["revisions"] == ["HEAD", EXP]
    trials = {v["rev"]: v["trials"] for v in bars["content"]["data"]["values"]}
    episodes = baseline["cfg"]["benchmarks"][BENCH]["eval_episodes_per_task"]
    assert trials == {"HEAD": str(_trials(baseline["cfg"], episodes)), EXP: str(_trials(baseline["cfg"], 1))}
    # loss curves from each run's train_log.csv (same training in both revisions)
    loss = plots["training loss (main table)"][0]["content"]["data"]["values"]
    cfg = baseline["cfg"]
    logged = cfg["train"]["steps"] // cfg["train"]["log_every"]
    main = len(cfg["experiments"]["main"]["models"]) * len(cfg["experiments"]["main"]["benchmarks"])
    assert {v["rev"] for v in loss} == {"HEAD", EXP} and len(loss) == 2 * logged * main
    assert all(float(v["loss"]) > 0 for v in loss)


def test_queued_sweep_runs_each_value(repo, experiment):
    # Two values -> two queued experiments, run one after the other in temporary copies.
    queued = run(["dvc", "exp", "run", "--queue", "-S", f"{CF}:{PAPER_NAME}=Sweep-A,Sweep-B"], cwd=repo)
    assert queued.stdout.count("Queued experiment") == 2, queued.stdout
    out = run(["dvc", "exp", "run", "--run-all"], cwd=repo)
    ran = _ran(out.stdout + out.stderr)
    assert ran and all(s.startswith(("table_", "figure_")) for s in ran), ran
    names = {_param(r, PAPER_NAME) for r in _dvc_csv(["exp", "show"], cwd=repo) if r["typ"].startswith("branch_")}
    assert {"Sweep-A", "Sweep-B"} <= names, names
