"""Generate dvc.yaml from the config: the same stages, commands and paths as the Snakemake
rules (both come from vlm4vla.pipeline), one DVC stage per Snakemake job.

    python workflow_scripts/make_dvc_yaml.py --configfile config/config.yaml > dvc.yaml
"""

import argparse
import sys

import yaml

from vlm4vla import pipeline as P
from vlm4vla.config import load_config, read_config_files


def launched(rule: str, threads: int, cmd: str) -> str:
    """A heavy stage's command, started through vlm4vla.launch: here by default, as a SLURM
    job with the rule's profile resources when VLM4VLA_LAUNCH_PROFILE names a profile. The
    command string (hashed into dvc.lock) is the same either way."""
    return f"python -m vlm4vla.launch --rule {rule} --threads {threads} -- {cmd}"


EVAL_SUMMARY = "summary.json"  # success rate, trials, Wilson CI: a DVC metric of each evaluation


def _in_file(raw: dict, dotted: str) -> bool:
    """DVC can only track keys written in the file (not schema defaults filled in later)."""
    node = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def stages(cfg: dict, cf: str) -> dict:
    conf = f"--configfile {cf}"
    out: dict = {}
    runs = P.all_runs(cfg)
    raw = read_config_files([cf])

    def stage(name, kind, cmd, deps, params, outs, metrics=None, **extra):
        # metrics: small JSON outputs that `dvc metrics show/diff` and `dvc exp show` read;
        # cached like outs (results/ is not in git), so push/pull restore them too.
        params = [k for k in params or [] if _in_file(raw, k)]
        out[name] = {"cmd": cmd, "deps": [f"workflow_scripts/{kind}.py", *P.CODE_DEPS[kind], *deps],
                     **({"params": [{cf: params}]} if params else {}), "outs": outs,
                     **({"metrics": metrics} if metrics else {}), **extra}

    for b in sorted({b for b, _ in runs}):
        d = P.demos_dir(b)
        stage(f"prepare_demos-{b}", "prepare_demos",
              launched("prepare_demos", 1, f"python workflow_scripts/prepare_demos.py {conf} --benchmark {b} --out {d}"),
              [], P.spec_param_keys(P.demo_spec, cfg, b), [d])
    for b, m in runs:
        pol, st = P.policy_dir(b, m), P.state_dir(b, m)
        stage(f"finetune_vla-{b}-{m}", "finetune_vla",
              launched("finetune_vla", cfg["threads"],
                       f"python workflow_scripts/finetune_vla.py {conf} --benchmark {b} --model {m}"
                       f" --demos {P.demos_dir(b)} --out {pol} --state {st}"),
              [P.demos_dir(b), *P.start_vlm_input(cfg, b, m)],
              P.spec_param_keys(P.train_spec, cfg, b, m), [pol])
    for b, m in runs:
        ev = P.eval_dir(b, m)
        stage(f"evaluate-{b}-{m}", "evaluate",
              launched("evaluate", cfg["evaluate"]["workers"],
                       f"python workflow_scripts/evaluate.py {conf} --benchmark {b} --model {m}"
                       f" --policy {P.policy_dir(b, m)} --out {ev}"),
              [P.policy_dir(b, m)], P.spec_param_keys(P.eval_spec, cfg, b, m),
              [f"{ev}/{f}" for f in P.EVAL_FILES if f != EVAL_SUMMARY],
              metrics=[f"{ev}/{EVAL_SUMMARY}"])
    for table in P.active_tables(cfg):
        t_runs, paths = P.table_runs(cfg, table), P.table_paths(table)
        stage(f"table_{table}", "make_table",
              f"python workflow_scripts/make_table.py {conf} --table {table}"
              f" --out-csv {paths['csv']} --out-md {paths['md']}",
              [f"{P.eval_dir(b, m)}/summary.json" for b, m in t_runs] + [P.policy_dir(b, m) for b, m in t_runs],
              P.spec_param_keys(P.table_spec, cfg, table), list(paths.values()))
    tables = P.active_tables(cfg)
    stage("table_paper_vs_reproduced", "table_paper_vs_reproduced",
          f"python workflow_scripts/table_paper_vs_reproduced.py {conf} --reported {P.PAPER_REPORTED} "
          + " ".join(f"--table {t}={P.table_paths(t)['csv']}" for t in tables)
          + f" --out-csv {P.TABLE_PAPER['csv']} --out-md {P.TABLE_PAPER['md']}",
          [P.PAPER_REPORTED] + [P.table_paths(t)["csv"] for t in tables],
          P.spec_param_keys(P.paper_spec, cfg), list(P.TABLE_PAPER.values()))
    stage("figure_main", "figure_main",
          f"python workflow_scripts/figure_main.py --table {P.TABLE_MAIN['csv']}"
          f" --png {P.FIGURE_MAIN['png']} --svg {P.FIGURE_MAIN['svg']}",
          [P.TABLE_MAIN["csv"]], None, list(P.FIGURE_MAIN.values()))
    aux_stages(cfg, conf, stage)
    return out


def aux_stages(cfg: dict, conf: str, stage) -> None:
    """Auxiliary VQA (generate, tune, score), FAST stage 1, Figures 3 and 4."""
    exps = cfg["experiments"]
    if P.aux_vlm_jobs(cfg) or P.vqa_eval_jobs(cfg) or P.pretrain_jobs(cfg):
        stage("generate_vqa", "generate_vqa",
              launched("generate_vqa", 1, f"python workflow_scripts/generate_vqa.py {conf} --out {P.VQA_DATA}"),
              [e[s] for _, e in sorted(cfg["vqa"].get("files", {}).items()) for s in ("train", "eval")],
              P.spec_param_keys(P.vqa_data_spec, cfg), [P.VQA_DATA])
    for m in P.pretrain_jobs(cfg):
        v = P.PRETRAIN_VLM
        d = P.vlm_dir(m, v)
        stage(f"pretrain_vlm-{m}", "finetune_vlm",
              launched("pretrain_vlm", cfg["threads"],
                       f"python workflow_scripts/finetune_vlm.py {conf} --model {m} --vlm {v} --vqa {P.VQA_DATA}"
                       f" --out {d} --state {P.vlm_state_dir(m, v)}"),
              [P.VQA_DATA], P.spec_param_keys(P.pretrain_spec, cfg, m), [d])
    for m, v in P.aux_vlm_jobs(cfg):
        d = P.vlm_dir(m, v)
        stage(f"finetune_vlm-{m}-{v}", "finetune_vlm",
              launched("finetune_vlm", cfg["threads"],
                       f"python workflow_scripts/finetune_vlm.py {conf} --model {m} --vlm {v} --vqa {P.VQA_DATA}"
                       f" --out {d} --state {P.vlm_state_dir(m, v)}"),
              [P.VQA_DATA, *P.pretrain_input(cfg, m)], P.spec_param_keys(P.vlm_train_spec, cfg, m, v), [d])
    for m, v in P.vqa_eval_jobs(cfg):
        ev, tuned = P.vqa_eval_dir(m, v), [] if v == "base" else [P.vlm_dir(m, v)]
        stage(f"eval_vqa-{m}-{v}", "eval_vqa",
              launched("eval_vqa", cfg["threads"],
                       f"python workflow_scripts/eval_vqa.py {conf} --model {m} --vlm {v} --vqa {P.VQA_DATA}"
                       + "".join(f" --weights {t}" for t in tuned) + f" --out {ev}"),
              [P.VQA_DATA, *tuned, *P.pretrain_input(cfg, m)], P.spec_param_keys(P.vqa_eval_spec, cfg, m, v),
              [f"{ev}/predictions.jsonl"], metrics=[f"{ev}/metrics.json"])
    for b, m, s1 in P.stage1_jobs(cfg):
        d = P.fast_vlm_dir(b, m, s1)
        stage(f"stage1_fast-{b}-{m}-{s1}", "stage1_fast",
              launched("stage1_fast", cfg["threads"],
                       f"python workflow_scripts/stage1_fast.py {conf} --benchmark {b} --model {m} --stage1 {s1}"
                       f" --demos {P.demos_dir(b)} --out {d} --state {P.fast_state_dir(b, m, s1)}"),
              [P.demos_dir(b), *P.pretrain_input(cfg, m)], P.spec_param_keys(P.stage1_spec, cfg, b, m, s1), [d])
    if exps.get("aux"):
        runs = P.aux_runs(cfg)
        stage("figure_aux", "figure_aux",
              f"python workflow_scripts/figure_aux.py {conf} --out-csv {P.AUX_TABLE['csv']}"
              f" --out-md {P.AUX_TABLE['md']} --png {P.FIGURE_AUX['png']} --svg {P.FIGURE_AUX['svg']}",
              [f"{P.eval_dir(b, r)}/summary.json" for b, r in runs]
              + [f"{P.vqa_eval_dir(m, a)}/metrics.json" for m in exps["aux"]["models"] for a in P.aux_arms(cfg)],
              P.spec_param_keys(P.aux_spec, cfg), [*P.AUX_TABLE.values(), *P.FIGURE_AUX.values()])
    if exps.get("capability"):
        runs = P.capability_runs(cfg)
        starts = {P.start_vlm(r) for _, r in runs}
        x = ([f"{P.vqa_eval_dir(m, v)}/metrics.json" for m, v in P.vqa_eval_jobs(cfg) if (m, v) in starts]
             if exps["capability"]["x"] == "measured" else [P.GENERAL_SCORES])
        stage("figure_capability", "figure_capability",
              f"python workflow_scripts/figure_capability.py {conf} --out-csv {P.CAPABILITY_TABLE['csv']}"
              f" --out-corr {P.CAPABILITY_CORR} --out-md {P.CAPABILITY_TABLE['md']}"
              f" --png {P.FIGURE_CAPABILITY['png']} --svg {P.FIGURE_CAPABILITY['svg']}",
              [f"{P.eval_dir(b, r)}/summary.json" for b, r in runs] + x,
              P.spec_param_keys(P.capability_spec, cfg),
              [*P.CAPABILITY_TABLE.values(), P.CAPABILITY_CORR, *P.FIGURE_CAPABILITY.values()])


def plots(cfg: dict, stage_defs: dict) -> list:
    """Top-level `plots:` for `dvc plots show` / `dvc plots diff`: every PNG a stage writes
    (the figures, as images) and, per result table whose runs are all on one benchmark, the
    success rate of each run as bars. (DVC cannot filter rows: a run on two benchmarks would
    be two bars on one row, so such tables are left to the figures.) Per table, the training
    loss of each of its runs, one line per run (train_log.csv in the policy folder)."""
    out: list = [o for st in stage_defs.values() for o in st["outs"] if o.endswith(".png")]
    for table in P.active_tables(cfg):
        out.append({f"training loss ({table} table)": {
            "template": "linear", "x": "step",
            "y": {f"{P.policy_dir(b, r)}/train_log.csv": "loss" for b, r in P.table_runs(cfg, table)},
            "x_label": "step", "y_label": "training loss"}})
        runs = [r for _, r in P.table_runs(cfg, table)]
        if len(set(runs)) == len(runs):
            out.append({f"success rate per run ({table} table)": {
                "template": "bar_horizontal", "x": "success_pct",
                "y": {P.table_paths(table)["csv"]: "run"},
                "x_label": "success (%)", "y_label": "run"}})
    return out


def render(cfg: dict, cf: str) -> str:
    header = ("# GENERATED by workflow_scripts/make_dvc_yaml.py from " + cf + " - do not edit.\n"
              "# Same stages as the Snakemake rules; regenerate after changing the config.\n")
    stage_defs = stages(cfg, cf)
    return header + yaml.safe_dump({"stages": stage_defs, "plots": plots(cfg, stage_defs)},
                                   sort_keys=False, width=100)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configfile", required=True)
    p.add_argument("--out", default="-", help="output path (default: stdout)")
    args = p.parse_args()
    text = render(load_config([args.configfile]), args.configfile)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
