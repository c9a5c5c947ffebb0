"""One record format for every auxiliary VQA source, and its on-disk store.

A record (VQARecord) is one question about one image:
    image     uint8 (H, W, 3)
    question  str, the user turn without any "<image>" placeholder
    answer    str, the canonical answer text the model is trained to produce
    task      "pointing" | "depth" | "embodied_qa" | "general_vqa" | "spatial_qa" | ...
    split     "train" | "eval"
    target    dict, the structured ground truth the metrics use (vlm4vla.eval.vqa_metrics),
              tagged by target["kind"]:
                points    {"points": [[x, y], ...], "object": str, "bbox": [x0, y0, x1, y1]?}
                          normalised image coordinates in [0, 1], x right, y down; the
                          object's pixel mask, when known, is record.mask
                choice    {"choices": [str, ...], "index": int}
                distance  {"value": float, "unit": "m"}
                text      {"answers": [str, ...]}  (any of them counts as correct)
    mask      optional bool (H, W): the pixels of the object a pointing question is about
    source    str, where it came from ("metaworld:push-v3:seed=..:step=..", "robopoint:<id>")
    id        str, unique within a store

Store layout (a folder; written to a temporary sibling and renamed into place, like the
episode store in vlm4vla.data.episodes, whose checksum helper and error type it reuses):
    frames.npy     uint8 (F, H, W, 3)  distinct images (records share frames by index)
    masks.npy      uint8 (M, H, W)     0/1 object masks (M may be 0)
    records.jsonl  one JSON object per line: id, frame, mask (index or null), task, split,
                   question, answer, target, source
    meta.json      format_version, counts per task and split, sha256/shape/dtype per file
Every file is checked against meta.json on open (verify=True), and a mismatch raises
CorruptStoreError naming the file. Identical inputs give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vlm4vla.data.folder_store import CorruptStoreError, read_meta, sha256_file, verify_files, write_meta
from vlm4vla.io import atomic_dir

FIX = "Delete the store folder and regenerate it."

FORMAT_VERSION = 1
SPLITS = ("train", "eval")
# Tasks this repository produces or loads; other lower-case names are accepted too.
VQA_TASKS = ("pointing", "depth", "embodied_qa", "general_vqa", "spatial_qa")
TARGET_KINDS = ("points", "choice", "distance", "text")
ARRAY_FILES = ("frames", "masks")
_TASK_RE = re.compile(r"^[a-z][a-z0-9_]*$")

__all__ = ["CorruptStoreError", "FORMAT_VERSION", "SPLITS", "TARGET_KINDS", "VQA_TASKS",
           "VQARecord", "VQAStore", "format_points", "write_vqa_store"]


def format_points(points) -> str:
    """Canonical answer text of normalised points: "[(0.412, 0.633), (0.100, 0.250)]"."""
    return "[" + ", ".join(f"({float(x):.3f}, {float(y):.3f})" for x, y in points) + "]"


@dataclass
class VQARecord:
    image: np.ndarray
    question: str
    answer: str
    task: str
    split: str
    target: dict
    mask: np.ndarray | None = None
    source: str = ""
    id: str = ""
    extra: dict = field(default_factory=dict)  # free-form provenance, stored with the row

    def validate(self) -> None:
        """Raise ValueError (naming the record) if a field is malformed."""
        who = f"VQA record {self.id or self.source or '?'}"
        img = np.asarray(self.image)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"{who}: image must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
        if not isinstance(self.question, str) or not self.question.strip():
            raise ValueError(f"{who}: empty question")
        if not isinstance(self.answer, str) or not self.answer.strip():
            raise ValueError(f"{who}: empty answer")
        if not _TASK_RE.match(str(self.task)):
            raise ValueError(f"{who}: task {self.task!r} is not a lower-case identifier "
                             f"(known: {', '.join(VQA_TASKS)})")
        if self.split not in SPLITS:
            raise ValueError(f"{who}: split {self.split!r} not in {SPLITS}")
        kind = self.target.get("kind") if isinstance(self.target, dict) else None
        if kind not in TARGET_KINDS:
            raise ValueError(f"{who}: target must be a dict with kind in {TARGET_KINDS}, "
                             f"got {self.target!r}")
        if kind == "points":
            pts = self.target.get("points")
            if not pts or any(len(p) != 2 or not all(0.0 <= float(c) <= 1.0 for c in p)
                              for p in pts):
                raise ValueError(f"{who}: points target needs normalised [[x, y], ...], got {pts!r}")
        elif kind == "choice":
            choices, index = self.target.get("choices"), self.target.get("index")
            if not choices or not isinstance(index, int) or not 0 <= index < len(choices):
                raise ValueError(f"{who}: choice target needs choices and a valid index")
        elif kind == "distance":
            if not float(self.target.get("value", -1)) > 0:
                raise ValueError(f"{who}: distance target needs a positive value")
        elif not self.target.get("answers"):
            raise ValueError(f"{who}: text target needs a non-empty answers list")
        if self.mask is not None:
            m = np.asarray(self.mask)
            if m.shape != img.shape[:2]:
                raise ValueError(f"{who}: mask shape {m.shape} != image shape {img.shape[:2]}")


def _resize(img: np.ndarray, size: int, nearest: bool) -> np.ndarray:
    from PIL import Image

    if img.shape[0] == size and img.shape[1] == size:
        return img
    pil = Image.fromarray(img)
    out = pil.resize((size, size), Image.NEAREST if nearest else Image.BILINEAR)
    return np.asarray(out)


def write_vqa_store(path: str | Path, records: list[VQARecord], image_size: int | None = None,
                    extra_meta: dict | None = None) -> Path:
    """Write `records` as a VQA store at `path` atomically (temporary folder + rename).

    Identical images (and masks) are stored once. All images must share one shape unless
    `image_size` is given, in which case every image is resized to (image_size, image_size)
    (bilinear; masks nearest). Normalised points/bboxes stay valid under that resize.
    Record ids must be unique; empty ids become "r{index:07d}".
    """
    path = Path(path)
    if not records:
        raise ValueError(f"refusing to write an empty VQA store at {path}")
    frame_index: dict[bytes, int] = {}
    mask_index: dict[bytes, int] = {}
    frames, masks, rows, seen_ids = [], [], [], set()
    shape = None
    for i, rec in enumerate(records):
        rec.validate()
        rid = rec.id or f"r{i:07d}"
        if rid in seen_ids:
            raise ValueError(f"duplicate VQA record id {rid!r}")
        seen_ids.add(rid)
        img = np.ascontiguousarray(rec.image, dtype=np.uint8)
        mask = None if rec.mask is None else np.ascontiguousarray(rec.mask, dtype=bool).astype(np.uint8)
        if image_size is not None:
            img = _resize(img, image_size, nearest=False)
            if mask is not None:
                mask = _resize(mask, image_size, nearest=True)
        if shape is None:
            shape = img.shape
        elif img.shape != shape:
            raise ValueError(f"VQA record {rid}: image shape {img.shape} differs from the first "
                             f"record's {shape}; pass image_size= to resize all images")
        key = hashlib.sha256(img.tobytes()).digest()
        if key not in frame_index:
            frame_index[key] = len(frames)
            frames.append(img)
        mask_id = None
        if mask is not None:
            mkey = hashlib.sha256(mask.tobytes()).digest()
            if mkey not in mask_index:
                mask_index[mkey] = len(masks)
                masks.append(mask)
            mask_id = mask_index[mkey]
        rows.append({"id": rid, "frame": frame_index[key], "mask": mask_id, "task": rec.task,
                     "split": rec.split, "question": rec.question, "answer": rec.answer,
                     "target": rec.target, "source": rec.source, "extra": rec.extra})
    arrays = {"frames": np.stack(frames),
              "masks": np.stack(masks) if masks else np.zeros((0, *shape[:2]), np.uint8)}
    counts = Counter((r["task"], r["split"]) for r in rows)

    with atomic_dir(path) as tmp:
        files = {}
        for name in ARRAY_FILES:
            np.save(tmp / f"{name}.npy", arrays[name], allow_pickle=False)
            files[f"{name}.npy"] = {"sha256": sha256_file(tmp / f"{name}.npy"),
                                    "shape": list(arrays[name].shape),
                                    "dtype": str(arrays[name].dtype)}
        with open(tmp / "records.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
        files["records.jsonl"] = {"sha256": sha256_file(tmp / "records.jsonl"), "rows": len(rows)}
        write_meta(tmp, {"format_version": FORMAT_VERSION, "records": len(rows),
                         "counts": {t: {s: counts[(t, s)] for s in SPLITS}
                                    for t in sorted({t for t, _ in counts})},
                         "files": files, **(extra_meta or {})})
    return path


class VQAStore:
    """Read-only view of a VQA store folder; frames and masks are memory-mapped."""

    def __init__(self, path: str | Path, verify: bool = True):
        self.path = Path(path)
        self.meta = read_meta(self.path, FORMAT_VERSION, "a VQA store", FIX)
        if verify:
            self.verify()
        arrays = {}
        for name in ARRAY_FILES:
            f = self.path / f"{name}.npy"
            try:
                arrays[name] = np.load(f, mmap_mode="r")
            except (OSError, ValueError) as e:
                raise CorruptStoreError(f"{f} cannot be read ({e}); delete {self.path} "
                                        "and regenerate it") from e
            want = self.meta["files"][f"{name}.npy"]
            if list(arrays[name].shape) != want["shape"] or str(arrays[name].dtype) != want["dtype"]:
                raise CorruptStoreError(f"{f} has shape/dtype {arrays[name].shape}/"
                                        f"{arrays[name].dtype}, meta.json says "
                                        f"{want['shape']}/{want['dtype']}")
        self.frames, self.masks = arrays["frames"], arrays["masks"]
        rec_file = self.path / "records.jsonl"
        try:
            self.rows: list[dict] = [json.loads(line) for line in
                                     rec_file.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CorruptStoreError(f"{rec_file} cannot be parsed ({e}); delete {self.path} "
                                    "and regenerate it") from e
        if len(self.rows) != self.meta["files"]["records.jsonl"]["rows"]:
            raise CorruptStoreError(f"{rec_file} has {len(self.rows)} rows, meta.json says "
                                    f"{self.meta['files']['records.jsonl']['rows']}")
        for row in self.rows:
            if not 0 <= row["frame"] < len(self.frames) or (
                    row["mask"] is not None and not 0 <= row["mask"] < len(self.masks)):
                raise CorruptStoreError(f"{rec_file}: record {row['id']} points at a missing "
                                        "frame or mask")

    def verify(self) -> None:
        """Recompute every file's sha256; raise CorruptStoreError naming the bad file."""
        verify_files(self.path, self.meta["files"], FIX)

    def __len__(self) -> int:
        return len(self.rows)

    def record(self, i: int) -> VQARecord:
        row = self.rows[i]
        return VQARecord(image=self.frames[row["frame"]], question=row["question"],
                         answer=row["answer"], task=row["task"], split=row["split"],
                         target=row["target"],
                         mask=None if row["mask"] is None else self.masks[row["mask"]].astype(bool),
                         source=row["source"], id=row["id"], extra=row.get("extra", {}))

    def records(self, split: str | None = None, task: str | None = None) -> list[VQARecord]:
        return [self.record(i) for i, r in enumerate(self.rows)
                if (split is None or r["split"] == split) and (task is None or r["task"] == task)]
