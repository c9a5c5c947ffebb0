"""Loaders of the paper's auxiliary VQA datasets, each on a tiny fixture of its schema."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from vlm4vla.data.vqa import VQAStore, write_vqa_store
from vlm4vla.data.vqa.loaders import load_bridgevqa, load_robo2vlm, load_robopoint, load_vica


def _png(path, colour, size=(12, 8)):
    Image.fromarray(np.full((size[1], size[0], 3), colour, np.uint8)).save(path)
    return path.name


def test_robopoint(tmp_path):
    _png(tmp_path / "a.png", (255, 0, 0))
    data = [{"id": "r1", "image": "a.png", "conversations": [
        {"from": "human", "value": "<image>\nPoint to the red mug. Output a list of (x, y) points."},
        {"from": "gpt", "value": "[(0.41, 0.63), (0.45, 0.6)]"},
        {"from": "human", "value": "What color is the mug?"},
        {"from": "gpt", "value": "Red."}]}]
    (tmp_path / "rp.json").write_text(json.dumps(data))
    recs = load_robopoint(tmp_path / "rp.json")
    assert [r.task for r in recs] == ["pointing", "general_vqa"]
    assert recs[0].question.startswith("Point to the red mug") and "<image>" not in recs[0].question
    assert recs[0].answer == "[(0.410, 0.630), (0.450, 0.600)]"
    assert recs[0].target["points"] == [[0.41, 0.63], [0.45, 0.6]]
    assert recs[0].image.shape == (8, 12, 3) and recs[0].image[0, 0, 0] == 255
    assert recs[1].target == {"kind": "text", "answers": ["Red."]}
    write_vqa_store(tmp_path / "store", recs)  # converted records are storable
    assert len(VQAStore(tmp_path / "store")) == 2


def test_robo2vlm_jsonl_with_hf_image_cells(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(buf, format="PNG")
    rows = [{"id": "q1", "question": "Is the gripper open?", "choices": "['yes', 'no']",
             "correct_answer": 1, "image": {"bytes": base64.b64encode(buf.getvalue()).decode(), "path": None}},
            {"id": "q2", "question": "Which way?", "choices": ["left", "right", "up"],
             "correct_answer": 2, "image": _png(tmp_path / "b.png", (0, 0, 9))}]
    (tmp_path / "r2v.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    recs = load_robo2vlm(tmp_path / "r2v.jsonl", split="eval")
    assert [r.answer for r in recs] == ["no", "up"] and all(r.split == "eval" for r in recs)
    assert recs[0].target == {"kind": "choice", "choices": ["yes", "no"], "index": 1}
    assert "A. yes\nB. no" in recs[0].question and recs[0].image[0, 0, 0] == 7
    assert recs[1].image[0, 0, 2] == 9


def test_robo2vlm_parquet(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="PNG")
    pd.DataFrame([{"id": "x", "question": "Q?", "choices": '["a", "b"]', "correct_answer": 0,
                   "image": {"bytes": buf.getvalue(), "path": None}}]).to_parquet(tmp_path / "t.parquet")
    recs = load_robo2vlm(tmp_path / "t.parquet")
    assert recs[0].answer == "a" and recs[0].image.shape == (4, 4, 3)


def test_vica(tmp_path):
    (tmp_path / "frames").mkdir()
    _png(tmp_path / "frames" / "f0.png", (1, 2, 3))
    data = [{"id": "v1", "image": ["frames/f0.png", "frames/f1.png"], "conversations": [
                {"from": "human", "value": "<image>\nHow far is the chair from the table, in meters?"},
                {"from": "gpt", "value": "1.5"},
                {"from": "human", "value": "Which object is larger, the sofa or the lamp?"},
                {"from": "gpt", "value": "sofa"}]},
            {"id": "v2", "video": "clip.mp4", "conversations": []}]
    (tmp_path / "vica.json").write_text(json.dumps(data))
    stats = {}
    recs = load_vica(tmp_path / "vica.json", stats=stats)
    assert stats["skipped_video"] == 1 and len(recs) == 2
    assert recs[0].task == "spatial_qa" and recs[0].target == {"kind": "distance", "value": 1.5, "unit": "m"}
    assert recs[1].target == {"kind": "text", "answers": ["sofa"]}
    assert tuple(recs[0].image[0, 0]) == (1, 2, 3)


def test_bridgevqa(tmp_path):
    img = _png(tmp_path / "c.png", (50, 60, 70))
    rows = [{"id": "b1", "image": img, "question": "Is the spoon left of the pot?", "answer": "yes",
             "type": "choice", "choices": ["yes", "no"]},
            {"id": "b2", "image": img, "question": "Point to the spoon.", "answer": "", "type": "points",
             "points": [[0.1, 0.2]]},
            {"id": "b3", "image": img, "question": "How far is the pot from the camera?", "answer": "0.80 m",
             "type": "distance", "value": 0.8, "split": "eval"},
            {"id": "b4", "image": img, "question": "What is on the stove?", "answer": "pot", "type": "text"}]
    (tmp_path / "bvqa.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    recs = load_bridgevqa(tmp_path / "bvqa.jsonl")
    assert [r.task for r in recs] == ["spatial_qa", "pointing", "spatial_qa", "spatial_qa"]
    assert recs[0].target["index"] == 0 and recs[1].answer == "[(0.100, 0.200)]"
    assert recs[2].split == "eval" and recs[2].target["value"] == 0.8
    rows[0]["answer"] = "maybe"
    (tmp_path / "bad.jsonl").write_text(json.dumps(rows[0]))
    with pytest.raises(ValueError, match="not one of its choices"):
        load_bridgevqa(tmp_path / "bad.jsonl")


def test_file_records_stamps_the_task_caps_each_split_and_names_a_missing_file(tmp_path):
    from vlm4vla.data.vqa.loaders import LOADERS, file_records

    img = _png(tmp_path / "c.png", (50, 60, 70))
    rows = [{"id": f"b{i}", "image": img, "question": f"q{i}?", "answer": "pot", "type": "text"}
            for i in range(5)]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "eval.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:2]))
    entry = {"format": "bridgevqa", "train": str(tmp_path / "train.jsonl"),
             "eval": str(tmp_path / "eval.jsonl")}
    recs = file_records("depth", entry, {"train": 3, "eval": 9})
    assert [(r.task, r.split) for r in recs] == [("depth", "train")] * 3 + [("depth", "eval")] * 2
    with pytest.raises(FileNotFoundError, match=r"'vqa.files.depth.eval': .*nope.jsonl does not exist"):
        file_records("depth", {**entry, "eval": str(tmp_path / "nope.jsonl")}, {"train": 3, "eval": 9})
    # the schema's enum and the loader table name the same formats
    import yaml
    from pathlib import Path
    schema = yaml.safe_load((Path(__file__).parents[1] / "config" / "schema.yaml").read_text())
    files = schema["properties"]["vqa"]["properties"]["files"]["additionalProperties"]
    assert sorted(files["properties"]["format"]["enum"]) == sorted(LOADERS)
