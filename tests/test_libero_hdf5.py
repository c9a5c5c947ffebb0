"""Official-LIBERO-schema hdf5 files -> episode store (on a small file written here)."""

import json

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from vlm4vla.data.episodes import EpisodeStore  # noqa: E402
from vlm4vla.data.libero_hdf5 import convert_libero_hdf5, keep_steps, load_libero_hdf5, upright  # noqa: E402

LANG = "put both the alphabet soup and the tomato sauce in the basket"
STEM = "LIVING_ROOM_SCENE2_put_both_the_alphabet_soup_and_the_tomato_sauce_in_the_basket_demo"


def _write(path, lengths=(5, 3, 4), size=32, noops=()):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["problem_info"] = json.dumps({"problem_name": "libero_tabletop_manipulation",
                                                 "domain_name": "robosuite",
                                                 "language_instruction": LANG})
        data.attrs["env_args"] = json.dumps({"env_name": "x"})
        # written out of numeric order on purpose (demo_10 must come after demo_2)
        for i, n in zip((10, 2, 0), lengths):
            g = data.create_group(f"demo_{i}")
            actions = rng.uniform(-1, 1, (n, 7)).astype(np.float64)
            actions[:, 6] = np.where(np.arange(n) % 2, 1.0, -1.0)
            for t in noops:  # still arm, same gripper as the step before: a no-op
                if 0 < t < n:
                    actions[t, :6] = 1e-6
                    actions[t, 6] = actions[t - 1, 6]
            g.create_dataset("actions", data=actions)
            img = np.zeros((n, size, size, 3), np.uint8)
            img[:, : size // 4, :, 0] = 255  # red band at the TOP of the raw (upside-down) frame
            img[:, :, : size // 4, 2] = 255  # blue band at the LEFT
            img[:, 0, 0, 1] = np.arange(n)  # marks the step
            g.create_group("obs").create_dataset("agentview_rgb", data=img)
            g["obs"].create_dataset("eye_in_hand_rgb", data=img)
            g.create_dataset("dones", data=np.eye(n)[-1])
            g.create_dataset("rewards", data=np.eye(n)[-1])


def test_upright_is_a_180_degree_rotation():
    raw = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    assert np.array_equal(upright(raw, 4), raw[:, ::-1, ::-1])
    assert upright(raw, 8).shape == (2, 8, 8, 3)


def test_load_file(tmp_path):
    path = tmp_path / f"{STEM}.hdf5"
    _write(path)
    episodes, task, instruction = load_libero_hdf5(path, image_size=32)
    assert instruction == LANG
    assert task == "libero_10/0"  # the file name is LIBERO-10's first task
    assert [e.seed for e in episodes] == [0, 2, 10]
    assert [len(e.actions) for e in episodes] == [4, 3, 5]
    ep = episodes[0]
    assert ep.frames.dtype == np.uint8 and ep.actions.dtype == np.float32
    assert set(np.unique(ep.actions[:, 6])) <= {-1.0, 1.0}
    # rotated 180: the raw top band is now at the bottom, the left band on the right
    assert ep.frames[0, -1, 16, 0] == 255 and ep.frames[0, 0, 16, 0] == 0
    assert ep.frames[0, 16, -1, 2] == 255 and ep.frames[0, 16, 0, 2] == 0
    assert [int(f[-1, -1, 1]) for f in ep.frames] == [0, 1, 2, 3]


def test_convert_to_store_resized(tmp_path):
    path = tmp_path / f"{STEM}.hdf5"
    _write(path)
    other = tmp_path / "some_other_task_demo.hdf5"
    _write(other, lengths=(2, 2, 2))
    with h5py.File(other, "a") as f:
        f["data"].attrs["problem_info"] = json.dumps({"language_instruction": "open the drawer"})
    stats = convert_libero_hdf5([path, other], tmp_path / "store", image_size=224,
                                max_demos_per_file=2)
    assert stats["episodes"] == 4 and stats["tasks"] == {"libero_10/0": 2, "some_other_task": 2}
    store = EpisodeStore(tmp_path / "store")
    assert store.frames.shape == (4 + 3 + 2 + 2, 224, 224, 3)
    assert store.instructions == {"libero_10/0": LANG, "some_other_task": "open the drawer"}
    assert store.benchmark == "libero"


def _official_is_noop(action, prev_action=None, threshold=1e-4):
    # openvla/experiments/robot/libero/regenerate_libero_dataset.py:46-68 (CladernyJorn/VLM4VLA
    # at 20fedc9), transcribed; applied to each step against the previous KEPT one (137-143)
    if prev_action is None:
        return np.linalg.norm(action[:-1]) < threshold
    return np.linalg.norm(action[:-1]) < threshold and action[-1] == prev_action[-1]


def test_noop_filter_is_openvlas():
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (60, 7))
    actions[:, 6] = np.sign(actions[:, 6])
    still = rng.random(60) < 0.4
    actions[still, :6] = rng.uniform(-5e-5, 5e-5, (still.sum(), 6))
    kept = []
    for a in actions:
        if not _official_is_noop(a, kept[-1] if kept else None):
            kept.append(a)
    assert 0 < len(kept) < len(actions)
    np.testing.assert_array_equal(actions[keep_steps(actions)], np.array(kept))


def test_load_drops_noop_steps_with_their_frames(tmp_path):
    path = tmp_path / f"{STEM}.hdf5"
    _write(path, noops=(2,))
    kept, _, _ = load_libero_hdf5(path, image_size=32)
    raw, _, _ = load_libero_hdf5(path, image_size=32, drop_noops=False)
    assert [len(e.actions) for e in raw] == [4, 3, 5]
    assert [len(e.actions) for e in kept] == [3, 2, 4]
    assert [int(f[-1, -1, 1]) for f in kept[0].frames] == [0, 1, 3]  # step 2's frame went too
