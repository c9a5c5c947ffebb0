"""The stage table (vlm4vla.pipeline.STAGES) and the DVC params traced from the specs: both
orchestrators get every stage from one declaration. Fast: dry runs and spec evaluations."""

import copy
import re
import sys

import pytest

from conftest import REPO, SNAKEMAKE, copy_repo, run
from vlm4vla import pipeline as P
from vlm4vla.config import load_config

sys.path.insert(0, str(REPO / "workflow_scripts"))
import make_dvc_yaml  # noqa: E402

TEST_CF = "config/test.yaml"


@pytest.fixture(scope="module")
def dvc_cfg():
    return load_config([REPO / TEST_CF])


def _snakemake_jobs(dry_run: str) -> dict:
    """{(rule, wildcards): (inputs, outputs, command)} from `snakemake -n -p` output."""
    jobs = {}
    for block in re.split(r"\n(?=\[[^\]]+\]\n(?:local)?rule )", dry_run):
        m = re.search(r"^(?:local)?rule (\w+):$", block, re.M)
        if not m or m.group(1) == "all":
            continue
        field = {k: v for k, v in re.findall(r"^    (\w+): (.*)$", block, re.M)}
        cmd = re.search(r"^Shell command: (.*?) > logs/\S+ 2>&1$", block, re.M).group(1)
        wildcards = tuple(sorted(field.get("wildcards", "").split(", "))) if "wildcards" in field else ()
        jobs[(m.group(1), wildcards)] = (set(field.get("input", "").split(", ")) - {""},
                                         set(field["output"].split(", ")), cmd)
    return jobs


def _dvc_jobs(cfg) -> dict:
    """The same, from the generated dvc.yaml stages (code deps and the launcher left out)."""
    stages = make_dvc_yaml.stages(cfg, TEST_CF)
    jobs = {}
    for name, st in P.STAGES.items():
        for values in st.jobs(cfg):
            w = P.job_wildcards(name, values)
            d = stages["-".join([name, *values])]
            cmd = d["cmd"].split(" -- ", 1)[1] if st.heavy else d["cmd"]
            key = (name, tuple(sorted(f"{k}={v}" for k, v in w.items())))
            jobs[key] = (set(d["deps"]) - set(P.stage_code(name)),
                         set(d["outs"]) | set(d.get("metrics", [])), cmd)
    return jobs


def test_snakemake_and_dvc_get_the_same_jobs_inputs_outputs_and_commands(tmp_path, dvc_cfg):
    work = copy_repo(tmp_path)
    dry = run([*SNAKEMAKE, "-n", "-p", "--configfile", TEST_CF], cwd=work).stdout
    snake = _snakemake_jobs(dry)
    dvc = _dvc_jobs(dvc_cfg)
    assert sorted(snake) == sorted(dvc)
    # Snakemake reads config.yaml + the overlay, DVC the overlay alone (same specs: tested in
    # test_pipeline_runs.py); otherwise each job must be the same
    overlay = "--configfile config/config.yaml --configfile config/test.yaml"
    for key in snake:
        s_in, s_out, s_cmd = snake[key]
        assert (s_in, s_out, s_cmd.replace(overlay, f"--configfile {TEST_CF}")) == dvc[key], key


def test_every_stage_is_complete():
    for name, st in P.STAGES.items():
        assert (REPO / "workflow_scripts" / f"{st.script}.py").is_file(), name
        assert all((REPO / p).exists() for p in P.stage_code(name)), name
        assert all((REPO / c).is_file() for c, _ in st.report.values()), name
        outs = P.job_outputs(name, **{k: "x" for k in st.wildcards})
        assert set(st.directories) | set(st.metrics) | set(st.report) <= set(outs), name
        used = {m for a in st.args for m in re.findall(r"\{output\.(\w+)\}", a)}
        assert used <= set(outs), name


def test_a_stage_needs_only_its_table_entry(tmp_path):
    """A new stage declared in the table alone is a Snakemake rule and a DVC stage."""
    work = copy_repo(tmp_path)
    stages_py = work / "src/vlm4vla/pipeline/stages.py"
    stages_py.write_text(stages_py.read_text() + '''
STAGES["count_demos"] = Stage(
    script="prepare_demos", heavy=False, artifact=True, inputs=lambda cfg: {"demos": [D.demos_dir("metaworld")]},
    outputs=lambda: {"n": "results/tables/n_demos.txt"}, args=("--out {output.n}",), code=())
''')
    dry = run([*SNAKEMAKE, "-n", "-p", "--configfile", TEST_CF], cwd=work).stdout
    assert "rule count_demos:" in dry and "results/tables/n_demos.txt" in dry
    dvc = run([sys.executable, "workflow_scripts/make_dvc_yaml.py", "--configfile", TEST_CF], cwd=work).stdout
    assert "count_demos:" in dvc


# --- traced DVC params ----------------------------------------------------------------------
def test_read_keys_records_what_a_spec_reads():
    cfg = {"seed": 1, "train": {"lr": 1e-4, "steps": 5},
           "benchmarks": {"a": {"chunk": 4, "paper_name": "A", "tasks": ["t"]}, "b": {"chunk": 2}},
           "vqa": {"tasks": {"depth": {"n": 1}, "pointing": {"n": 2}}, "eval": {"n": 3}},
           "models": {"m": {"backbone": "x"}}}

    def spec(c):
        return {"seed": c["seed"], "train": dict(c["train"]),  # iterated, read whole -> `train`
                "bench": P.without(c["benchmarks"]["a"], ["paper_name"]),  # per key, label dropped
                "tasks": sorted(c["vqa"]["tasks"]),  # key names only -> the section
                "eval": c["vqa"]["eval"],  # a section held as it is -> the section
                "has_aug": "augment" in c["benchmarks"]["b"]}  # absent key: nothing to track
    assert P.read_keys(spec, cfg) == ["benchmarks.a.chunk", "benchmarks.a.tasks", "seed", "train",
                                      "vqa.eval", "vqa.tasks"]
    # one benchmark copied whole is that benchmark, never all of `benchmarks`; filtered, per key
    assert P.read_keys(lambda c: {"b": dict(c["benchmarks"]["b"])}, cfg) == ["benchmarks.b"]
    assert P.read_keys(lambda c: {"b": P.without(c["benchmarks"]["b"], [])}, cfg) == ["benchmarks.b.chunk"]
    assert P.read_keys(lambda c: P.pick(c["models"]["m"], ["backbone", "steps"]), cfg) == \
        ["models.m.backbone"]


def _leaves(node, path=""):
    if isinstance(node, dict) and node:
        for k in sorted(node):
            yield from _leaves(node[k], f"{path}.{k}" if path else k)
    else:
        yield path


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "_changed"
    if isinstance(value, list):
        return [*value, value[-1]] if value else ["changed"]
    return {"changed": 1} if value is None else None


def _set(cfg, dotted, value):
    *parents, last = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[last] = value


def _get(cfg, dotted):
    node = cfg
    for p in dotted.split("."):
        node = node[p]
    return node


@pytest.mark.parametrize("cf", [["config/test.yaml"], ["config/config.yaml", "config/test.yaml"]])
def test_no_key_outside_the_dvc_params_changes_a_spec(cf):
    """The traced params are complete: changing any other config value leaves every job's spec
    (Snakemake's re-run trigger) unchanged, so DVC never misses a re-run that Snakemake does."""
    cfg = load_config([REPO / f for f in cf])
    leaves = list(_leaves(cfg))
    checked = 0
    for name, st in P.STAGES.items():
        if st.spec is None:
            continue
        for values in st.jobs(cfg):
            keys = P.read_keys(st.spec, cfg, *values)
            before = st.spec(cfg, *values)
            for leaf in leaves:
                if any(leaf == k or leaf.startswith(k + ".") for k in keys):
                    continue
                old = copy.deepcopy(_get(cfg, leaf))
                _set(cfg, leaf, _changed(old))
                try:
                    after = st.spec(cfg, *values)
                except Exception as e:  # a spec that breaks on it depends on it
                    after = repr(e)
                finally:
                    _set(cfg, leaf, old)
                assert after == before, f"{name}{values}: {leaf} changes the spec but is not a DVC param"
                checked += 1
    assert checked > 1000


def test_dvc_params_follow_result_changing_keys(dvc_cfg):
    """The drift the hand-kept lists had: every evaluate key but the view-only ones, the main
    table's init rows, per-benchmark recipe keys."""
    ev = P.read_keys(P.eval_spec, dvc_cfg, "metaworld", "qwen25vl_tiny")
    assert {f"evaluate.{k}" for k in dvc_cfg["evaluate"] if k not in P.EVAL_VIEW_KEYS} <= set(ev)
    assert not {f"evaluate.{k}" for k in P.EVAL_VIEW_KEYS} & set(ev)
    assert {"experiments.init.models", "experiments.init.benchmarks"} <= set(P.read_keys(P.table_spec, dvc_cfg, "main"))
    c = copy.deepcopy(dvc_cfg)
    c["benchmarks"]["metaworld"].update(train_steps=7, lr_schedule="constant", paper_name="MW")
    tr = P.read_keys(P.train_spec, c, "metaworld", "qwen25vl_tiny")
    assert {"benchmarks.metaworld.train_steps", "benchmarks.metaworld.lr_schedule"} <= set(tr)
    assert "models.qwen25vl_tiny.paper_name" not in tr  # a label: re-runs no training
    demo = P.read_keys(P.demo_spec, c, "metaworld")
    assert not {"benchmarks.metaworld.train_steps", "benchmarks.metaworld.paper_name",
                "benchmarks.metaworld.eval_episodes_per_task"} & set(demo)
