"""Loaders for the paper's auxiliary VQA datasets (local files) -> VQARecord lists.

Each loader reads one annotation file plus the images it names (paths relative to
`image_root`, default: the annotation file's folder) and returns records in our format
(vlm4vla.data.vqa.records). Question text loses LLaVA's "<image>" placeholder. `limit`
caps the number of records; `split` is stamped on every record.

RoboPoint (load_robopoint): LLaVA conversation JSON, a list of
    {"id": str, "image": "path.png", "conversations": [
        {"from": "human", "value": "<image>\\n... Point to ..."},
        {"from": "gpt", "value": "[(0.41, 0.63), (0.45, 0.60)]"}, ...]}
  Each human/gpt pair is a record. A gpt answer made of (x, y) pairs in [0, 1] becomes a
  "pointing" record with a points target (scored by distance to those points, since the
  training JSON has no masks); any other answer (RoboPoint mixes in plain VQA) becomes
  "general_vqa" with a text target.

Robo2VLM (load_robo2vlm): the HF dataset's columns id, question, choices (a string holding
  a list, or a list), correct_answer (0-based index), image (an HF image cell
  {"bytes": ..., "path": ...} or a path). Read from .parquet (needs pandas + pyarrow) or
  .jsonl/.json rows with the same fields (image "bytes" may be base64 text). Records are
  "embodied_qa" with a choice target; the canonical answer is the correct choice's text,
  and the question lists the choices as "A. ...", "B. ...".

Vica-332k (load_vica): LLaVA conversation JSON like RoboPoint's, where "image" may be a
  path or a list of RGB(-D) video frame paths (the first frame is used). Entries with only
  a "video" (no frames extracted) are skipped and counted in stats["skipped_video"].
  Records are "spatial_qa": an answer that is a bare number (optionally "m"/"cm"/
  "meters") gets a distance target (abs-rel), anything else a text target.

BridgeVQA-style spatial QA (load_bridgevqa), our JSON-lines schema, one object per line:
    {"id": str, "image": "path.png", "question": str, "answer": str,
     "type": "choice" | "points" | "distance" | "text",
     "choices": [str, ...],        # type choice: answer must be one of them
     "points": [[x, y], ...],      # type points: normalised, x right, y down
     "value": float,               # type distance: metres
     "split": "train" | "eval"}    # optional; overrides the split argument
  Records are "spatial_qa" ("pointing" for type points).
"""

from __future__ import annotations

import ast
import base64
import io
import json
import re
from pathlib import Path

import numpy as np

from vlm4vla.data.vqa.records import VQARecord, format_points
from vlm4vla.eval.vqa_metrics import parse_points

__all__ = ["load_bridgevqa", "load_robo2vlm", "load_robopoint", "load_vica", "read_image"]

_NUMBER_ANSWER = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*(m|meters?|metres?|cm|centimeters?)?\s*\.?\s*$",
                            re.I)


def read_image(src, root: Path | None = None) -> np.ndarray:
    """uint8 (H, W, 3) from a path (relative to root), raw bytes, base64 text or an HF
    image cell {"bytes": ..., "path": ...}."""
    from PIL import Image

    if isinstance(src, dict):
        if src.get("bytes") is not None:
            src = src["bytes"]
        elif src.get("path"):
            src = src["path"]
        else:
            raise ValueError(f"image cell has neither bytes nor path: {list(src)}")
    if isinstance(src, (bytes, bytearray)):
        data = io.BytesIO(src)
    elif isinstance(src, str) and (root is None or not (root / src).is_file()) \
            and not Path(src).is_file() and len(src) > 64:
        data = io.BytesIO(base64.b64decode(src))
    else:
        path = Path(src) if root is None or Path(src).is_absolute() else root / src
        if not path.is_file():
            raise FileNotFoundError(f"image {path} not found")
        data = path
    with Image.open(data) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _strip_image_token(text: str) -> str:
    return re.sub(r"\s*<image>\s*", " ", text).strip()


def _pairs(conversations: list[dict]):
    """(question, answer) pairs of a LLaVA conversation (human turn followed by gpt turn)."""
    for a, b in zip(conversations, conversations[1:]):
        if a.get("from") == "human" and b.get("from") == "gpt":
            yield _strip_image_token(a["value"]), str(b["value"]).strip()


def _load_json_list(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of entries, got {type(data).__name__}")
    return data


def _points_answer(answer: str) -> list[tuple[float, float]] | None:
    pts = parse_points(answer)
    rest = re.sub(r"[\s\[\]\(\),.\d-]", "", answer)
    if pts and not rest and all(0.0 <= c <= 1.0 for p in pts for c in p):
        return pts
    return None


def load_robopoint(json_path, image_root=None, split: str = "train",
                   limit: int | None = None) -> list[VQARecord]:
    path = Path(json_path)
    root = Path(image_root) if image_root else path.parent
    out: list[VQARecord] = []
    for entry in _load_json_list(path):
        image = read_image(entry["image"], root)
        for k, (q, a) in enumerate(_pairs(entry["conversations"])):
            pts = _points_answer(a)
            if pts is not None:
                task, answer = "pointing", format_points(pts)
                target = {"kind": "points", "points": [[x, y] for x, y in pts], "object": ""}
            else:
                task, answer, target = "general_vqa", a, {"kind": "text", "answers": [a]}
            out.append(VQARecord(image=image, question=q, answer=answer, task=task, split=split,
                                 target=target, source=f"robopoint:{entry['id']}",
                                 id=f"robopoint-{entry['id']}-{k}"))
            if limit is not None and len(out) >= limit:
                return out
    return out


def _read_rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    return _load_json_list(path)


def load_robo2vlm(path, image_root=None, split: str = "train",
                  limit: int | None = None) -> list[VQARecord]:
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    out: list[VQARecord] = []
    for row in _read_rows(path):
        choices = row["choices"]
        if isinstance(choices, str):
            try:
                choices = json.loads(choices)
            except json.JSONDecodeError:
                choices = ast.literal_eval(choices)
        choices = [str(c) for c in choices]
        index = int(row["correct_answer"])
        if not 0 <= index < len(choices):
            raise ValueError(f"{path}: row {row['id']} has correct_answer {index} "
                             f"for {len(choices)} choices")
        listing = "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(choices))
        out.append(VQARecord(
            image=read_image(row["image"], root),
            question=f"{_strip_image_token(str(row['question']))}\n{listing}",
            answer=choices[index], task="embodied_qa", split=split,
            target={"kind": "choice", "choices": choices, "index": index},
            source=f"robo2vlm:{row['id']}", id=f"robo2vlm-{row['id']}"))
        if limit is not None and len(out) >= limit:
            break
    return out


def load_vica(json_path, image_root=None, split: str = "train", limit: int | None = None,
              stats: dict | None = None) -> list[VQARecord]:
    path = Path(json_path)
    root = Path(image_root) if image_root else path.parent
    stats = stats if stats is not None else {}
    stats.setdefault("skipped_video", 0)
    out: list[VQARecord] = []
    for entry in _load_json_list(path):
        img = entry.get("image")
        if isinstance(img, list):
            img = img[0] if img else None
        if img is None:
            stats["skipped_video"] += 1
            continue
        image = read_image(img, root)
        for k, (q, a) in enumerate(_pairs(entry["conversations"])):
            m = _NUMBER_ANSWER.match(a)
            if m:
                value = float(m.group(1)) / (100 if (m.group(2) or "").lower().startswith("c") else 1)
                target = {"kind": "distance", "value": value, "unit": "m"}
            else:
                target = {"kind": "text", "answers": [a]}
            out.append(VQARecord(image=image, question=q, answer=a, task="spatial_qa",
                                 split=split, target=target, source=f"vica:{entry['id']}",
                                 id=f"vica-{entry['id']}-{k}"))
            if limit is not None and len(out) >= limit:
                return out
    return out


def load_bridgevqa(jsonl_path, image_root=None, split: str = "train",
                   limit: int | None = None) -> list[VQARecord]:
    path = Path(jsonl_path)
    root = Path(image_root) if image_root else path.parent
    out: list[VQARecord] = []
    for n, row in enumerate(_load_json_list(path)):
        kind, answer, task = row.get("type", "text"), str(row["answer"]), "spatial_qa"
        if kind == "choice":
            choices = [str(c) for c in row["choices"]]
            if answer not in choices:
                raise ValueError(f"{path}: row {row.get('id', n)}: answer {answer!r} is not "
                                 f"one of its choices {choices}")
            target = {"kind": "choice", "choices": choices, "index": choices.index(answer)}
        elif kind == "points":
            target = {"kind": "points", "points": [[float(x), float(y)] for x, y in row["points"]],
                      "object": ""}
            task, answer = "pointing", format_points(row["points"])
        elif kind == "distance":
            target = {"kind": "distance", "value": float(row["value"]), "unit": "m"}
        elif kind == "text":
            target = {"kind": "text", "answers": [answer]}
        else:
            raise ValueError(f"{path}: row {row.get('id', n)}: unknown type {kind!r} "
                             "(choice, points, distance, text)")
        rid = row.get("id", str(n))
        out.append(VQARecord(image=read_image(row["image"], root), question=row["question"],
                             answer=answer, task=task, split=row.get("split", split),
                             target=target, source=f"bridgevqa:{rid}", id=f"bridgevqa-{rid}"))
        if limit is not None and len(out) >= limit:
            break
    return out


# `vqa.files.<task>.format` -> loader (config/schema.yaml enumerates the same names).
LOADERS = {"robopoint": load_robopoint, "robo2vlm": load_robo2vlm, "vica": load_vica,
           "bridgevqa": load_bridgevqa}


def file_records(task: str, entry: dict, quota: dict) -> list[VQARecord]:
    """Records of one VQA task read from the paper's dataset files (`vqa.files.<task>`:
    format, train, eval, optional image_root and limit), at most quota[split] per split.
    Every record is stamped with `task`: the file is this task's dataset (each record is
    still scored by its own target kind: points, choice, distance or text)."""
    import dataclasses

    if entry["format"] not in LOADERS:
        raise ValueError(f"config key 'vqa.files.{task}.format': unknown format {entry['format']!r} "
                         f"(known: {', '.join(sorted(LOADERS))})")
    load = LOADERS[entry["format"]]
    out: list[VQARecord] = []
    for split in ("train", "eval"):
        path = Path(entry[split])
        if not path.exists():
            raise FileNotFoundError(f"config key 'vqa.files.{task}.{split}': {path} does not exist "
                                    f"(the {entry['format']} annotation file for the {split} split)")
        recs = load(path, entry.get("image_root"), split=split, limit=entry.get("limit"))
        if not recs:
            raise ValueError(f"config key 'vqa.files.{task}.{split}': {path} holds no records")
        out += [dataclasses.replace(r, task=task) for r in recs[:quota[split]]]
    return out
