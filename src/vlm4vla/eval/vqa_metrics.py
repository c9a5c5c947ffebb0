"""Scores for auxiliary VQA predictions (records: vlm4vla.data.vqa.records.VQARecord).

Per record, by target["kind"]:
    points    fraction of the predicted points that land on the object: inside
              record.mask when there is one, else inside target["bbox"] when given, else
              within POINT_RADIUS (normalised) of a ground-truth point. A prediction with no
              parsable point scores 0. Points may be normalised ([0, 1]) or, if any value
              exceeds 1, pixels of the record's image.
    choice    1 if the normalised prediction equals the correct choice, or names its letter
              ("B", "(b)", "B." for index 1) or its 1-based number, else 0
    distance  abs-rel error |pred - gt| / gt of the first number in the prediction (a "cm"
              or "mm" unit is converted to metres); unparsable -> counted in `unparsed` and
              scored as abs-rel 1.0
    text      exact match after normalisation (lower case, no punctuation or articles,
              number words -> digits, "color"/"colour" and "gray"/"grey" unified)

score(records, predictions) -> {vqa_task: {...}} with, per task, n and the metrics of the
kinds present: point_acc, choice_acc, abs_rel, unparsed, exact_match, and "accuracy" (mean
over all of the task's records of point fraction / correct choice / exact match /
abs-rel <= 0.1 (delta)).
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

POINT_RADIUS = 0.05
DISTANCE_OK = 0.10  # abs-rel at or below which a metric distance counts as correct
_NUM = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
_PAIR = re.compile(r"[\(\[]\s*(" + _NUM + r")\s*,\s*(" + _NUM + r")\s*[\)\]]")
_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
          "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
          "grey": "gray", "colour": "color", "none": "0", "no one": "0"}
_ARTICLES = {"a", "an", "the"}


def parse_points(text: str, image_shape: tuple[int, ...] | None = None) -> list[tuple[float, float]]:
    """All (x, y) pairs written as "(x, y)" or "[x, y]" in `text`, normalised to [0, 1]
    (pixel coordinates are divided by the image size when any value exceeds 1)."""
    pts = [(float(a), float(b)) for a, b in _PAIR.findall(str(text))]
    if not pts:  # a bare "x, y" answer
        nums = re.findall(_NUM, str(text))
        if len(nums) == 2:
            pts = [(float(nums[0]), float(nums[1]))]
    if pts and max(max(abs(x), abs(y)) for x, y in pts) > 1.0 and image_shape is not None:
        h, w = image_shape[:2]
        pts = [(x / w, y / h) for x, y in pts]
    return pts


def normalise_text(text: str) -> str:
    t = str(text).lower().strip()
    t = re.sub(r"[^\w\s.]", " ", t)
    t = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", t)  # drop full stops, keep decimal points
    words = [_WORDS.get(w, w) for w in t.split() if w not in _ARTICLES]
    return " ".join(words)


def parse_distance(text: str) -> float | None:
    m = re.search(r"(" + _NUM + r")\s*(cm|mm|centimet\w*|millimet\w*|m\b|met\w*)?", str(text).lower())
    if not m:
        return None
    value, unit = float(m.group(1)), (m.group(2) or "m")
    if unit.startswith(("cm", "centi")):
        value /= 100
    elif unit.startswith(("mm", "milli")):
        value /= 1000
    return value


def point_score(record, prediction: str) -> float:
    target = record.target
    shape = None if record.image is None else np.asarray(record.image).shape
    pts = parse_points(prediction, shape)
    if not pts:
        return 0.0
    hits = 0
    for x, y in pts:
        if record.mask is not None:
            mask = np.asarray(record.mask)
            h, w = mask.shape
            r, c = int(np.floor(y * h)), int(np.floor(x * w))
            hits += bool(0 <= r < h and 0 <= c < w and mask[r, c])
        elif target.get("bbox"):
            x0, y0, x1, y1 = target["bbox"]
            hits += bool(x0 <= x <= x1 and y0 <= y <= y1)
        else:
            hits += bool(min(np.hypot(x - gx, y - gy) for gx, gy in target["points"]) <= POINT_RADIUS)
    return hits / len(pts)


def choice_correct(target: dict, prediction: str) -> bool:
    pred = normalise_text(prediction)
    choices = [normalise_text(c) for c in target["choices"]]
    index = target["index"]
    if pred == choices[index]:
        return True
    if pred in choices:  # another choice's text
        return False
    # a letter ("B", "(b)", "B. puck") - matched on the raw text: "A" is also an article
    m = re.fullmatch(r"\(?([A-Za-z])\)?[.:]?(?:\s+(.*))?", str(prediction).strip(), re.S)
    if m:
        rest = normalise_text(m.group(2) or "")
        return ord(m.group(1).lower()) - ord("a") == index and rest in ("", choices[index])
    if re.fullmatch(r"\d+", pred):  # a 1-based choice number
        return int(pred) - 1 == index
    return False


def score(records, predictions) -> dict:
    """Score `predictions` (a list aligned with `records`, or a dict keyed by record id)."""
    if isinstance(predictions, dict):
        missing = [r.id for r in records if r.id not in predictions]
        if missing:
            raise KeyError(f"no prediction for {len(missing)} record(s), e.g. {missing[:3]}")
        preds = [predictions[r.id] for r in records]
    else:
        preds = list(predictions)
        if len(preds) != len(records):
            raise ValueError(f"{len(preds)} predictions for {len(records)} records")
    acc = defaultdict(lambda: defaultdict(list))
    for rec, pred in zip(records, preds):
        kind, a = rec.target["kind"], acc[rec.task]
        pred = "" if pred is None else str(pred)
        if kind == "points":
            s = point_score(rec, pred)
            a["point_acc"].append(s)
            a["accuracy"].append(s)
        elif kind == "choice":
            ok = float(choice_correct(rec.target, pred))
            a["choice_acc"].append(ok)
            a["accuracy"].append(ok)
        elif kind == "distance":
            v, gt = parse_distance(pred), float(rec.target["value"])
            err = 1.0 if v is None else abs(v - gt) / gt
            a["unparsed"].append(float(v is None))
            a["abs_rel"].append(err)
            a["accuracy"].append(float(err <= DISTANCE_OK + 1e-9))
        elif kind == "text":
            answers = {normalise_text(t) for t in rec.target["answers"]}
            ok = float(normalise_text(pred) in answers)
            a["exact_match"].append(ok)
            a["accuracy"].append(ok)
        else:
            raise ValueError(f"record {rec.id}: unknown target kind {kind!r}")
    out = {}
    for task, metrics in sorted(acc.items()):
        out[task] = {"n": len(metrics["accuracy"])}
        for name, vals in metrics.items():
            out[task][name] = float(np.mean(vals))
            if name != "accuracy":
                out[task][f"n_{name}"] = len(vals)
    return out
