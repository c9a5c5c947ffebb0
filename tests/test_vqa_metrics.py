"""VQA metrics on hand-made cases."""

import numpy as np
import pytest

from vlm4vla.data.vqa import VQARecord
from vlm4vla.eval.vqa_metrics import normalise_text, parse_distance, parse_points, score

IMG = np.zeros((10, 20, 3), np.uint8)


def _rec(task, target, mask=None, rid=None):
    return VQARecord(IMG, "q?", "a", task, "eval", target, mask=mask, id=rid or task)


def test_parsers():
    assert parse_points("[(0.412, 0.633), (0.1,0.2)]") == [(0.412, 0.633), (0.1, 0.2)]
    assert parse_points("The cube is at [0.25, 0.5].") == [(0.25, 0.5)]
    assert parse_points("(10, 5)", IMG.shape) == [(0.5, 0.5)]  # pixels -> normalised
    assert parse_points("no idea") == []
    assert parse_distance("1.23 m") == 1.23 and parse_distance("about 83 cm") == pytest.approx(0.83)
    assert parse_distance("unknown") is None
    assert normalise_text("The Grey one.") == normalise_text("gray 1")


def test_pointing_fraction_inside_mask_bbox_and_radius():
    mask = np.zeros((10, 20), bool)
    mask[0:5, 0:10] = True  # left-top quarter: x < 0.5, y < 0.5
    recs = [_rec("pointing", {"kind": "points", "points": [[0.2, 0.2]]}, mask, "m"),
            _rec("pointing", {"kind": "points", "points": [[0.2, 0.2]], "bbox": [0, 0, 0.5, 0.5]}, None, "b"),
            _rec("pointing", {"kind": "points", "points": [[0.2, 0.2]]}, None, "r")]
    preds = {"m": "[(0.1, 0.1), (0.9, 0.9)]", "b": "[(0.4, 0.4)]", "r": "garbage"}
    out = score(recs, preds)["pointing"]
    assert out["n"] == 3 and out["point_acc"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert score(recs[2:], ["(0.22, 0.21)"])["pointing"]["point_acc"] == 1.0


def test_depth_choice_and_abs_rel():
    choice = {"kind": "choice", "choices": ["puck", "goal marker"], "index": 0}
    dist = {"kind": "distance", "value": 2.0, "unit": "m"}
    recs = [_rec("depth", choice, rid="c1"), _rec("depth", choice, rid="c2"),
            _rec("depth", dist, rid="d1"), _rec("depth", dist, rid="d2")]
    out = score(recs, ["The puck.", "goal marker", "2.20 m", "n/a"])["depth"]
    assert out["choice_acc"] == 0.5 and out["n_choice_acc"] == 2
    assert out["abs_rel"] == pytest.approx((0.1 + 1.0) / 2) and out["unparsed"] == 0.5
    assert out["accuracy"] == pytest.approx((1 + 0 + 1 + 0) / 4)  # abs-rel 0.1 counts as correct


def test_choice_letters_and_exact_match():
    t = {"kind": "choice", "choices": ["open", "closed"], "index": 1}
    recs = [_rec("embodied_qa", t, rid=str(i)) for i in range(6)]
    out = score(recs, ["B", "(b) closed", "2", "closed.", "A", "open"])["embodied_qa"]
    assert out["choice_acc"] == pytest.approx(4 / 6)
    text = {"kind": "text", "answers": ["3"]}
    recs = [_rec("general_vqa", text, rid=str(i)) for i in range(3)]
    assert score(recs, ["Three.", "3", "three objects"])["general_vqa"]["exact_match"] == pytest.approx(2 / 3)


def test_score_rejects_misaligned_predictions():
    recs = [_rec("general_vqa", {"kind": "text", "answers": ["yes"]})]
    with pytest.raises(ValueError, match="1 records"):
        score(recs, [])
    with pytest.raises(KeyError):
        score(recs, {"other": "yes"})
