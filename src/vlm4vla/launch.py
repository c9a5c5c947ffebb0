"""Run one DVC stage's command where a profile says: on this machine, or as a SLURM job.

dvc.yaml's heavy stages (demos, trainings, evaluations, VQA) start as

    python -m vlm4vla.launch --rule finetune_vla --threads 1 -- python workflow_scripts/...

so the command DVC hashes into dvc.lock is the same wherever it runs. Which launcher is
used is the environment's business, not the stage's:

- `VLM4VLA_LAUNCH_PROFILE` unset: the command runs here, in this process (exec).
- `VLM4VLA_LAUNCH_PROFILE=profiles/slurm`: the command runs as `srun` with the rule's
  resources from that Snakemake profile (`<profile>/config.yaml`: `default-resources`
  merged with `set-resources[<rule>]`; the same numbers Snakemake submits with):
  runtime (minutes) -> --time, mem_mb -> --mem, cpus_per_task (`threads` = --threads) ->
  --cpus-per-task, gpu -> --gpus, slurm_partition -> --partition, slurm_account ->
  --account. srun blocks until the job has ended and passes on its output and exit status,
  so `dvc repro` on a login node records each output in dvc.lock once its job is done. The
  working directory must be on a file system the compute nodes share (as for Snakemake).

With gpu > 1 a `python` command is started under `accelerate launch` over those GPUs, as
the Snakemake rules' launcher does (rules/common.smk).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import yaml

ENV = "VLM4VLA_LAUNCH_PROFILE"
# Snakemake resource name -> srun option (value formatting below)
SRUN_OPTIONS = {"runtime": "--time", "mem_mb": "--mem", "cpus_per_task": "--cpus-per-task",
                "gpu": "--gpus", "slurm_partition": "--partition", "slurm_account": "--account"}


def rule_resources(profile: str | Path, rule: str, threads: int) -> dict:
    """The resources the profile gives `rule` (default-resources, then set-resources)."""
    path = Path(profile) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{ENV}={profile}: {path} is missing (a Snakemake profile "
                                "folder such as profiles/slurm is expected)")
    prof = yaml.safe_load(path.read_text()) or {}
    if prof.get("executor") not in ("slurm", None):
        raise ValueError(f"{path}: executor {prof.get('executor')!r}; vlm4vla.launch knows 'slurm'")
    res = dict(prof.get("default-resources") or {})
    res.update((prof.get("set-resources") or {}).get(rule) or {})
    if res.get("cpus_per_task") == "threads":
        res["cpus_per_task"] = threads
    return res


def srun_command(res: dict, rule: str, command: list[str]) -> list[str]:
    args = ["srun", f"--job-name={rule}", "--ntasks=1"]
    for key in sorted(res):
        if key in SRUN_OPTIONS and res[key] not in (None, "", 0):
            value = res[key]
            if key == "mem_mb":
                value = f"{int(value)}M"
            args.append(f"{SRUN_OPTIONS[key]}={value}")
    return args + with_gpus(command, int(res.get("gpu") or 0))


def with_gpus(command: list[str], gpus: int) -> list[str]:
    if gpus > 1 and command and command[0] in ("python", "python3"):
        return ["accelerate", "launch", "--num_machines", "1", "--num_processes", str(gpus),
                *command[1:]]
    return command


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rule", required=True, help="the Snakemake rule whose resources apply")
    p.add_argument("--threads", type=int, default=1, help="the rule's threads (cpus_per_task: threads)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the stage's command")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command after --")
    profile = os.environ.get(ENV)
    if profile:
        command = srun_command(rule_resources(profile, args.rule, args.threads), args.rule, command)
        print(f"[launch] {shlex.join(command)}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.execvp(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
