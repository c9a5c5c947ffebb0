"""Auxiliary VQA data: the record store, and Meta-World answers checked against the simulator."""

import json

import numpy as np
import pytest

import vlm4vla.sim.render  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)
import mujoco  # noqa: E402
from vlm4vla.data.vqa import VQARecord, VQAStore, write_vqa_store  # noqa: E402
from vlm4vla.data.vqa import metaworld_gen as gen  # noqa: E402
from vlm4vla.data.episodes import CorruptStoreError  # noqa: E402
from vlm4vla.eval.vqa_metrics import parse_distance, parse_points  # noqa: E402

BENCH = {"plugin": "metaworld", "tasks": ["pick-place-v3", "drawer-open-v3"], "image_size": 224,
         "max_steps": 80, "demos_per_task": 1, "chunk": 4, "eval_episodes_per_task": 1,
         "eval_seed_offset": 100000}
TASKS = {"pointing": {"train": 8, "eval": 4}, "depth": {"train": 8, "eval": 4},
         "embodied_qa": {"train": 8, "eval": 4}, "general_vqa": {"train": 4, "eval": 2}}
VISIBLE_GROUPS = np.array([1, 1, 1, 0, 0, 0], dtype=np.uint8)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("vqa") / "store"
    stats = gen.generate_vqa(BENCH, TASKS, out, seed=7)
    assert stats["counts"] == TASKS and stats["records"] == 42
    return VQAStore(out)


def _ray_distance(model, data, origin, direction, bodies) -> float | None:
    """CPU ray cast (independent of the GL depth buffer): distance to the first visible geom,
    None unless that geom belongs to one of `bodies`."""
    geomid = np.array([-1], dtype=np.int32)
    d = mujoco.mj_ray(model, data, origin, direction, VISIBLE_GROUPS, 1, -1, geomid)
    return d if geomid[0] >= 0 and model.geom_bodyid[geomid[0]] in bodies else None


def _surface_distance(model, data, cam, mask, obj) -> float:
    """Median camera-to-surface distance over the object's mask, from ray casts (geoms)
    or from sphere geometry (site markers)."""
    if obj.sites:
        sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, obj.sites[0])
        return float(np.linalg.norm(data.site_xpos[sid] - cam.pos) - model.site_size[sid][0])
    bodies = {mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in obj.bodies}
    dirs = cam.ray_dirs()
    rows, cols = np.nonzero(mask)
    idx = np.linspace(0, len(rows) - 1, min(len(rows), 60)).astype(int)
    hits = [_ray_distance(model, data, cam.pos, dirs[rows[i], cols[i]], bodies) for i in idx]
    hits = [h for h in hits if h is not None]
    assert len(hits) >= 0.8 * len(idx)
    return float(np.median(hits))


def _scene(task, seed, step, env=None, aux=None):
    from vlm4vla.sim.metaworld_env import MetaWorldEnv

    env = env or MetaWorldEnv(task, 224)
    aux = aux or gen.AuxRenderer(env._env.model, 224, "corner3")
    env.reset(seed)
    done = False
    for _ in range(step):
        done |= env.step(env.expert_action()).success
    objects = (*gen.TASK_OBJECTS[task], gen.GRIPPER)
    return env, aux, gen.frame_truth(env, aux, objects, env.expert_action(), done)


def test_projection_lands_on_segmentation_mask():
    """Project the puck's and goal marker's centres with our camera model (intrinsics from
    fovy, pose from cam_xpos/xmat, 180-degree roll): they hit the rendered mask, at its centroid."""
    env, aux, ft = _scene("pick-place-v3", 11, 0)
    try:
        seed = 11
        while ft.masks["puck"].sum() < 35:  # the arm may hide part of the puck: find a clear view
            seed += 1
            _, _, ft = _scene("pick-place-v3", seed, 0, env, aux)
        model, data = env._env.model, env._env.data
        for name, world in [("puck", data.xpos[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "obj")]),
                            ("goal marker", data.site_xpos[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "goal")])]:
            (u, v), = ft.cam.project(world[None])[0]
            mask = ft.masks[name]
            assert mask[int(v), int(u)], name
            rows, cols = np.nonzero(mask)
            assert abs(cols.mean() + 0.5 - u) < 2.0 and abs(rows.mean() + 0.5 - v) < 2.5, name
            # the RGB frame really shows it there: red puck, blue goal marker
            rgb = ft.image[mask].mean(0)
            assert (rgb[0] > 2 * rgb[2]) if name == "puck" else (rgb[2] > 2 * rgb[0])
    finally:
        aux.close()
        env.close()


def test_depth_buffer_in_metres_matches_ray_casts():
    env, aux, ft = _scene("pick-place-v3", 11, 30)
    try:
        model, data = env._env.model, env._env.data
        dirs = ft.cam.ray_dirs()
        for obj in (gen.TASK_OBJECTS["pick-place-v3"][0], gen.GRIPPER):
            bodies = {mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in obj.bodies}
            rows, cols = np.nonzero(ft.masks[obj.name])
            errs = []
            for r, c in zip(rows, cols):
                hit = _ray_distance(model, data, ft.cam.pos, dirs[r, c], bodies)
                if hit is not None:
                    errs.append(abs(hit - ft.range[r, c]))
            assert len(errs) >= 0.8 * len(rows), obj.name
            assert np.median(errs) < 0.003 and np.mean(np.array(errs) < 0.01) > 0.9, obj.name
            surf = _surface_distance(model, data, ft.cam, ft.masks[obj.name], obj)
            assert abs(ft.distance[obj.name] - surf) < 0.01, obj.name
        # z-depth, not range, is what the buffer holds: off-centre pixels differ
        assert ft.range[0, 0] > ft.depth[0, 0] * 1.05
    finally:
        aux.close()
        env.close()


def test_store_counts_splits_and_pointing_inside_masks(store):
    rows = store.rows
    assert {(r["split"], r["task"]) for r in rows} == {(s, t) for t in TASKS for s in ("train", "eval")}
    seeds = {s: {r["extra"]["seed"] for r in rows if r["split"] == s} for s in ("train", "eval")}
    assert not seeds["train"] & seeds["eval"]  # eval scenes are held out
    assert store.frames.shape[1:] == (224, 224, 3) and store.frames.dtype == np.uint8
    for rec in store.records(task="pointing"):
        pts = parse_points(rec.answer)
        assert pts == [tuple(p) for p in rec.target["points"]]
        for x, y in pts:
            assert rec.mask[int(y * 224), int(x * 224)], (rec.id, rec.answer)


def test_depth_records_agree_with_simulator(store):
    """Re-simulate the scenes behind depth records; answers agree with CPU ray casts."""
    recs = store.records(task="depth")
    checked = {"choice": 0, "distance": 0}
    by_scene = {}
    for rec in recs:
        by_scene.setdefault((rec.extra["bench_task"], rec.extra["seed"], rec.extra["step"]), []).append(rec)
    for (task, seed, step), group in list(by_scene.items())[:4]:
        env, aux, ft = _scene(task, seed, step)
        try:
            assert np.array_equal(group[0].image, ft.image)  # the same state was rebuilt
            objs = {o.name: o for o in ft.objects}
            model, data = env._env.model, env._env.data
            for rec in group:
                t = rec.target
                if t["kind"] == "choice":
                    a, b = t["choices"]
                    da, db = (_surface_distance(model, data, ft.cam, ft.masks[n], objs[n]) for n in (a, b))
                    assert rec.answer == (a if da < db else b), (rec.question, da, db)
                    checked["choice"] += 1
                else:
                    name = rec.question.split("the ", 1)[1].split(" from")[0]
                    surf = _surface_distance(model, data, ft.cam, ft.masks[name], objs[name])
                    assert abs(parse_distance(rec.answer) - surf) < 0.015, (rec.question, surf)
                    checked["distance"] += 1
        finally:
            aux.close()
            env.close()
    assert checked["choice"] + checked["distance"] >= 3


def test_store_frames_are_the_policy_frames(store):
    rec = store.records(task="general_vqa")[0]
    env, aux, ft = _scene(rec.extra["bench_task"], rec.extra["seed"], rec.extra["step"])
    aux.close()
    env.close()
    assert np.array_equal(rec.image, ft.image)


def test_generation_is_deterministic(tmp_path):
    bench = dict(BENCH, tasks=["push-v3"], max_steps=40)
    tasks = {"pointing": {"train": 3, "eval": 2}, "embodied_qa": {"train": 3, "eval": 2},
             "frames_per_scene": 2}
    gen.generate_vqa(bench, tasks, tmp_path / "a", seed=3)
    # the same tasks in another key order (a merged overlay vs a single config file)
    gen.generate_vqa(bench, dict(reversed(list(tasks.items()))), tmp_path / "b", seed=3)
    for name in ("frames.npy", "masks.npy", "records.jsonl", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_unknown_vqa_task_and_uncatalogued_scene_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="unknown VQA task 'ocr'"):
        gen.generate_vqa(BENCH, {"ocr": {"train": 1}}, tmp_path / "x", seed=0)
    with pytest.raises(ValueError, match="no VQA object catalogue"):
        gen.generate_vqa(dict(BENCH, tasks=["hammer-v3"]), TASKS, tmp_path / "x", seed=0)


def _tiny_records():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    mask = np.zeros((8, 8), bool)
    mask[2:5, 3:6] = True
    return [
        VQARecord(img, "Point to the cube.", "[(0.500, 0.400)]", "pointing", "train",
                  {"kind": "points", "points": [[0.5, 0.4]], "object": "cube"}, mask=mask, id="p"),
        VQARecord(img, "How far?", "1.20 m", "depth", "eval",
                  {"kind": "distance", "value": 1.2, "unit": "m"}, id="d"),
        VQARecord(img[::-1].copy(), "Color?", "red", "embodied_qa", "train",
                  {"kind": "text", "answers": ["red"]}, source="x", id="t"),
    ]


def test_store_round_trip_and_corruption(tmp_path):
    recs = _tiny_records()
    write_vqa_store(tmp_path / "s", recs)
    s = VQAStore(tmp_path / "s")
    assert len(s) == 3 and len(s.frames) == 2 and len(s.masks) == 1  # shared frame stored once
    for a, b in zip(recs, s.records()):
        assert np.array_equal(a.image, b.image) and a.question == b.question
        assert (a.answer, a.task, a.split, a.target, a.id) == (b.answer, b.task, b.split, b.target, b.id)
        assert (a.mask is None) == (b.mask is None)
        assert a.mask is None or np.array_equal(a.mask, b.mask)
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["counts"]["depth"] == {"train": 0, "eval": 1}
    assert set(meta["files"]) == {"frames.npy", "masks.npy", "records.jsonl"}
    for name in ("frames.npy", "records.jsonl", "masks.npy"):
        write_vqa_store(tmp_path / "c", recs)
        f = tmp_path / "c" / name
        data = bytearray(f.read_bytes())
        data[-2] ^= 0xFF
        f.write_bytes(bytes(data))
        with pytest.raises(CorruptStoreError, match=name.replace(".", r"\.")):
            VQAStore(tmp_path / "c")
    (tmp_path / "c" / "meta.json").unlink()
    with pytest.raises(CorruptStoreError, match="meta.json"):
        VQAStore(tmp_path / "c")


def test_writer_validates_records(tmp_path):
    bad = _tiny_records()[0]
    bad.target = {"kind": "points", "points": [[1.5, 0.2]]}
    with pytest.raises(ValueError, match="normalised"):
        write_vqa_store(tmp_path / "s", [bad])
    recs = _tiny_records()
    recs[2].image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="image_size"):
        write_vqa_store(tmp_path / "s", recs)
    write_vqa_store(tmp_path / "s", recs, image_size=6)
    assert VQAStore(tmp_path / "s").frames.shape == (2, 6, 6, 3)
    assert not list(tmp_path.glob(".s.tmp-*"))  # no temporary folder left behind
