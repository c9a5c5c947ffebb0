"""Loading and validating the workflow configuration.

One source of truth: the YAML config file(s). Snakemake reads them with `configfile:` /
`--configfile`; the workflow scripts (run by Snakemake or by DVC) read the same files with
`load_config`, merged in the same order with the same recursive update, so both tools see
one config. Validation is against config/schema.yaml; errors name the offending key and,
for a misspelt key, the closest valid one.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
from pathlib import Path

import yaml

# Backbone families as data (no torch, no model code): validating a config imports neither.
from vlm4vla.models.families import check_arch, known_families, supports_vqa

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "config" / "schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and the fix."""


def deep_update(base: dict, update: dict) -> dict:
    """Recursive dict update, as Snakemake merges --configfile over configfile:."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def read_config_files(paths: list[str | Path]) -> dict:
    cfg: dict = {}
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist (pass an existing --configfile)")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"config file {p} must hold a mapping at top level")
        deep_update(cfg, data)
    return cfg


def _schema_at(schema: dict, path: list) -> dict:
    """The sub-schema that describes the object at `path` (for key suggestions); local
    `$ref`s are followed, so a section that reuses another's schema lists its keys."""
    node = _resolve(schema, schema)
    for key in path:
        node = _resolve(node, schema)
        props = node.get("properties", {})
        if key in props:
            node = props[key]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        elif isinstance(node.get("items"), dict):
            node = node["items"]
        else:
            return {}
    return _resolve(node, schema)


def schema_default(*path: str):
    """The `default` config/schema.yaml declares for the key at `path` (e.g. "evaluate",
    "batch_envs"), for library callers that pass a partial section: the schema stays the
    one place a default is declared. KeyError naming the key if it declares none."""
    schema = _load_schema(SCHEMA_PATH)
    node = _schema_at(schema, list(path))
    if "default" not in node:
        raise KeyError(f"config/schema.yaml declares no default for '{'.'.join(path)}'")
    return copy.deepcopy(node["default"])


@functools.lru_cache(maxsize=None)
def _load_schema(path: Path) -> dict:
    """The parsed schema file (read once per process; never mutated: defaults are copied)."""
    return yaml.safe_load(Path(path).read_text())


def _format_error(err, schema: dict) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        known = sorted(_schema_at(schema, list(err.absolute_path)).get("properties", {}))
        allowed = set(known)
        lines = []
        for key in sorted(k for k in err.instance if k not in allowed):
            full = f"{where}.{key}" if err.absolute_path else key
            near = difflib.get_close_matches(key, known, n=1)
            hint = f" - did you mean '{near[0]}'?" if near else f" (valid keys: {', '.join(known)})"
            lines.append(f"unknown config key '{full}'{hint}")
        return "; ".join(lines)
    if err.validator == "required":
        return f"config key '{where}' is missing a required entry: {err.message}"
    return f"config key '{where}': {err.message}"


def validate_config(cfg: dict, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Validate (and fill schema defaults into) `cfg`; raise ConfigError naming the key.
    A null value removes the entry (an overlay file's way to drop what config.yaml sets,
    e.g. `vqa: {tasks: {depth: null}}`)."""
    import jsonschema

    _drop_nulls(cfg)

    schema = _load_schema(Path(schema_path))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("invalid configuration: " + "; ".join(_format_error(e, schema) for e in errors))
    _fill_defaults(cfg, schema, schema)
    _check_references(cfg)
    return cfg


def _drop_nulls(node) -> None:
    if isinstance(node, dict):
        for key in [k for k, v in node.items() if v is None]:
            del node[key]
        for v in node.values():
            _drop_nulls(v)


def _resolve(sub: dict, root: dict) -> dict:
    """A local `$ref` ("#/a/b") replaced by what it points to (e.g. vqa.train -> train)."""
    while "$ref" in sub:
        node = root
        for part in sub["$ref"].lstrip("#/").split("/"):
            node = node[part]
        sub = node
    return sub


def _fill_defaults(node, schema: dict, root: dict) -> None:
    if not isinstance(node, dict):
        return
    schema = _resolve(schema, root)
    for key, sub in schema.get("properties", {}).items():
        sub = _resolve(sub, root)
        if key not in node and "default" in sub:
            node[key] = copy.deepcopy(sub["default"])
        if key in node:
            _fill_defaults(node[key], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in node:
            if key not in schema.get("properties", {}):
                _fill_defaults(node[key], extra, root)


def _check_references(cfg: dict) -> None:
    """Cross-references the schema cannot express: names that must exist."""
    if cfg["experiments"].get("init"):
        for m in cfg["experiments"]["init"]["models"]:
            if m in cfg["models"] and cfg["models"][m]["init"] not in ("pretrained", "pretrain_vlm"):
                raise ConfigError(f"config key 'experiments.init.models' names model '{m}', whose "
                                  "init is neither 'pretrained' nor 'pretrain_vlm': the init table "
                                  "compares a pretrained model with its scratch twin")
    for exp_name, exp in sorted(cfg["experiments"].items()):
        for m in exp.get("models", []):
            if m not in cfg["models"]:
                raise ConfigError(f"config key 'experiments.{exp_name}.models' names model '{m}', "
                                  f"which is not defined under 'models' (defined: {', '.join(sorted(cfg['models']))})")
        for b in exp.get("benchmarks", []):
            if b not in cfg["benchmarks"]:
                raise ConfigError(f"config key 'experiments.{exp_name}.benchmarks' names benchmark '{b}', "
                                  f"which is not defined under 'benchmarks' (defined: {', '.join(sorted(cfg['benchmarks']))})")
    from vlm4vla.sim.registry import CHAINED, PLUGINS

    for name, model in sorted(cfg["models"].items()):
        if model["backbone"] not in known_families():
            raise ConfigError(f"config key 'models.{name}.backbone': unknown backbone '{model['backbone']}' "
                              f"(known: {', '.join(known_families())})")
        for b in sorted(model.get("lr_on", {})):
            if b not in cfg["benchmarks"]:
                raise ConfigError(f"config key 'models.{name}.lr_on' names benchmark '{b}', which is not "
                                  f"defined under 'benchmarks' (defined: {', '.join(sorted(cfg['benchmarks']))})")
        problem = check_arch(model["backbone"], model["arch"]) if model.get("arch") else None
        if problem:  # transformers configs accept unknown keys silently: check them here
            raise ConfigError(f"config key 'models.{name}.arch': {problem}")
    for name, bench in sorted(cfg["benchmarks"].items()):
        if bench["plugin"] not in PLUGINS:
            raise ConfigError(f"config key 'benchmarks.{name}.plugin': unknown plugin '{bench['plugin']}' "
                              f"(known: {', '.join(sorted(PLUGINS))})")
        if "wait_protocol" in bench and bench["plugin"] != "libero":
            raise ConfigError(f"config key 'benchmarks.{name}.wait_protocol' is for plugin 'libero' "
                              f"only (this benchmark's plugin: '{bench['plugin']}'); remove it")
        if bench["plugin"] in CHAINED and "eval_chains" not in bench:
            raise ConfigError(f"config key 'benchmarks.{name}' needs 'eval_chains': plugin "
                              f"'{bench['plugin']}' is evaluated on chains of subtasks (paper: 1000)")
    _check_vqa_references(cfg)


def _check_vqa_references(cfg: dict) -> None:
    exps, vqa = cfg["experiments"], cfg.get("vqa")
    needs_vqa = [e for e in ("aux",) if exps.get(e)] + \
        (["capability (x: measured)"] if (exps.get("capability") or {}).get("x") == "measured" else [])
    if needs_vqa and not vqa:
        raise ConfigError(f"experiments {', '.join(needs_vqa)} need a 'vqa' section (the auxiliary VQA "
                          "data, its fine-tuning recipe and evaluation); see config/config.yaml")
    used = {m for e in exps.values() for m in e.get("models", [])}  # an overlay may leave others
    pretrained_here = sorted(m for m in used if cfg["models"][m]["init"] == "pretrain_vlm")
    if pretrained_here and not (vqa and cfg.get("pretrain")):
        raise ConfigError(f"models {pretrained_here} have init 'pretrain_vlm', which needs a 'pretrain' "
                          "section (tasks, train) and a 'vqa' section (its records); see config/config.yaml")
    for m in pretrained_here:
        if not supports_vqa(cfg["models"][m]["backbone"]):
            raise ConfigError(f"config key 'models.{m}.init' is 'pretrain_vlm', but backbone "
                              f"'{cfg['models'][m]['backbone']}' has no language-model head path; "
                              "use init scratch or a VQA-capable family")
    if pretrained_here:
        for t in cfg["pretrain"]["tasks"]:
            if t not in vqa["tasks"]:
                raise ConfigError(f"config key 'pretrain.tasks' names VQA task '{t}', which has no "
                                  f"records under 'vqa.tasks' (configured: {', '.join(sorted(vqa['tasks']))})")
    if vqa:
        for b in vqa["benchmarks"]:
            if b not in cfg["benchmarks"]:
                raise ConfigError(f"config key 'vqa.benchmarks' names benchmark '{b}', which is not "
                                  f"defined under 'benchmarks' (defined: {', '.join(sorted(cfg['benchmarks']))})")
        missing = sorted(set(vqa["tasks"]) - set(vqa.get("files", {})))
        if missing and not vqa["benchmarks"]:
            raise ConfigError(f"config key 'vqa.benchmarks' is empty, so VQA task(s) {missing} have "
                              "neither generated records nor 'vqa.files'")
    for exp_name in ("aux", "vision_supervision"):
        for m in (exps.get(exp_name) or {}).get("models", []):
            if not supports_vqa(cfg["models"][m]["backbone"]):
                raise ConfigError(f"config key 'experiments.{exp_name}.models' names model '{m}', whose "
                                  f"backbone '{cfg['models'][m]['backbone']}' has no language-model head "
                                  "path (VQA fine-tuning); use a VQA-capable family")
    from vlm4vla.pipeline.runs import AUX_PREFIX

    for base, arms in sorted(((exps.get("aux") or {}).get("released") or {}).items()):
        for arm, m in sorted({"": base, **arms}.items()):
            where = f"experiments.aux.released.{base}" + (f".{arm}" if arm else "")
            if m not in cfg["models"]:
                raise ConfigError(f"config key '{where}' names model '{m}', which is not defined under "
                                  f"'models' (defined: {', '.join(sorted(cfg['models']))})")
            if cfg["models"][m]["backbone"] != cfg["models"][base]["backbone"]:
                raise ConfigError(f"config key '{where}': released model '{m}' has backbone "
                                  f"'{cfg['models'][m]['backbone']}', its base '{base}' has "
                                  f"'{cfg['models'][base]['backbone']}'; a released arm is a tuning "
                                  "of its base, so both must be of one family")
            if not supports_vqa(cfg["models"][m]["backbone"]):
                raise ConfigError(f"config key '{where}' names model '{m}', whose backbone "
                                  f"'{cfg['models'][m]['backbone']}' has no language-model head path "
                                  "(its VQA skill is measured); use a VQA-capable family")
        if arms.keys() & {"base", *(AUX_PREFIX + t for t in exps["aux"]["tasks"])}:
            raise ConfigError(f"config key 'experiments.aux.released.{base}': arm names 'base' and "
                              f"'{AUX_PREFIX}<task>' are the pipeline's own arms; name the released "
                              "arm after its VLM (e.g. robobrain2)")
    if exps.get("aux"):
        for t in exps["aux"]["tasks"]:
            if t not in vqa["tasks"]:
                raise ConfigError(f"config key 'experiments.aux.tasks' names VQA task '{t}', which has "
                                  f"no records under 'vqa.tasks' (configured: {', '.join(sorted(vqa['tasks']))})")
    if (exps.get("capability") or {}).get("x") == "measured" and vqa:
        for t in exps["capability"]["x_tasks"]:
            if t not in vqa["tasks"]:
                raise ConfigError(f"config key 'experiments.capability.x_tasks' names VQA task '{t}', which has "
                                  f"no records under 'vqa.tasks' (configured: {', '.join(sorted(vqa['tasks']))})")
    if exps.get("capability"):
        have = set(exps["main"]["benchmarks"]) | set((exps.get("aux") or {}).get("benchmarks", []))
        for b in exps["capability"]["benchmarks"]:
            if b not in have:
                raise ConfigError(f"config key 'experiments.capability.benchmarks' names '{b}', on which "
                                  "no main-table or aux run is evaluated (add it to experiments.main.benchmarks)")


def load_config(paths: list[str | Path], schema_path: str | Path = SCHEMA_PATH) -> dict:
    return validate_config(read_config_files(paths), schema_path)


def canonical_json(obj) -> str:
    """Stable text of a config fragment (sorted keys): used as Snakemake params so that a
    change in exactly the settings a rule depends on re-runs exactly that rule."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def fingerprint(obj) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]
