"""CALVIN's released dataset layout (task_ABC_D) -> episode store, on a small fixture this
test writes in that layout (mees/calvin dataset/README.md), then a tiny training step on it."""

import numpy as np
import pytest

from vlm4vla.data.calvin_dataset import convert_calvin, read_annotations, select
from vlm4vla.data.dataset import ChunkDataset
from vlm4vla.data.episodes import EpisodeStore
from vlm4vla.data.normalize import ActionNormalizer
from conftest import tiny_training_step

SEGMENTS = [(0, 5, "open_drawer", "pull the handle to open the drawer"),
            (4, 9, "push_red_block_left", "go push the red block left"),
            (12, 15, "open_drawer", "open the cabinet drawer"),
            (16, 19, "turn_on_led", "toggle the light switch... no, press the button")]


def write_calvin(root, n_steps=20, size=200):
    """A task_ABC_D-like split: one episode_<7 digits>.npz per step + the annotation file."""
    split = root / "task_ABC_D" / "training"
    (split / "lang_annotations").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for t in range(n_steps):
        img = np.zeros((size, size, 3), np.uint8)
        img[..., 0] = t  # marks the step
        img[: size // 4, :, 1] = 255  # a band at the top
        rel = rng.uniform(-1, 1, 7).astype(np.float32)
        rel[6] = 1.0 if t % 3 else -1.0  # CALVIN: +1 open, -1 close
        np.savez(split / f"episode_{t:07d}.npz", rgb_static=img, rel_actions=rel,
                 actions=rng.normal(size=7).astype(np.float32), robot_obs=np.zeros(15, np.float32),
                 scene_obs=np.zeros(24, np.float32), rgb_gripper=np.zeros((84, 84, 3), np.uint8))
    ann = {"info": {"indx": [(s, e) for s, e, _, _ in SEGMENTS], "episodes": []},
           "language": {"ann": [a for *_, a in SEGMENTS], "task": [t for _, _, t, _ in SEGMENTS],
                        "emb": np.zeros((len(SEGMENTS), 1, 384), np.float32)}}
    np.save(split / "lang_annotations" / "auto_lang_ann.npy", ann, allow_pickle=True)
    return root / "task_ABC_D"


def test_annotations_and_selection(tmp_path):
    root = write_calvin(tmp_path)
    anns = read_annotations(root / "training")
    assert anns == [(s, e, t, a) for s, e, t, a in SEGMENTS]
    assert [a[2] for a in select(anns, ["open_drawer"], 1)] == ["open_drawer"]
    assert len(select(anns, None, None)) == 4


def test_convert_segments_to_episodes(tmp_path):
    root = write_calvin(tmp_path)
    stats = convert_calvin(root, tmp_path / "store", image_size=32,
                           tasks=["open_drawer", "push_red_block_left", "turn_on_led"], per_task=5)
    assert stats == {"tasks": {"open_drawer": 2, "push_red_block_left": 1, "turn_on_led": 1},
                     "episodes": 4, "steps": 6 + 6 + 4 + 4}
    store = EpisodeStore(tmp_path / "store")
    assert store.benchmark == "calvin" and store.frames.shape == (20, 32, 32, 3)
    # each segment is its own episode with its own text (overlapping ranges are both kept)
    assert [(e["seed"], e["length"], e["instruction"]) for e in store.episodes] == \
        [(s, e - s + 1, a) for s, e, _, a in SEGMENTS]
    assert store.instruction_of(7) == SEGMENTS[1][3]
    assert [int(f[0, 0, 0]) for f in store.frames[6:12]] == list(range(4, 10))  # steps 4..9
    raw = [np.load(root / "training" / f"episode_{t:07d}.npz")["rel_actions"] for t in range(6)]
    np.testing.assert_array_equal(store.actions[:6, :6], np.stack(raw)[:, :6])
    assert list(store.actions[:6, 6]) == [-1.0 if r[6] > 0 else 1.0 for r in raw]  # ours: +1 close
    # chunks are masked past each segment's end, CALVIN's fixed +-0.65 normalisation applies
    ds = ChunkDataset(store, 10, ActionNormalizer.fixed(-0.65, 0.65))
    assert ds.masks[0].sum() == 6 and ds.instructions[12] == SEGMENTS[2][3]


def test_missing_files_are_named(tmp_path):
    root = write_calvin(tmp_path)
    (root / "training" / "episode_0000003.npz").unlink()
    with pytest.raises(FileNotFoundError, match="episode_0000003.npz: step 3 .* download is incomplete"):
        convert_calvin(root, tmp_path / "store", image_size=32)
    assert not (tmp_path / "store").exists()  # nothing half-written
    with pytest.raises(FileNotFoundError, match="auto_lang_ann.npy: no CALVIN language annotations"):
        convert_calvin(tmp_path / "nowhere", tmp_path / "store2")


def test_a_training_step_runs_on_it(tmp_path):
    from vlm4vla.data.sources import build_demos

    root = write_calvin(tmp_path)
    bench = {"plugin": "calvin", "demos": {"source": "calvin", "path": str(root)}, "image_size": 56,
             "tasks": ["open_drawer", "push_red_block_left"], "demos_per_task": 10, "chunk": 10}
    build_demos(bench, tmp_path / "demos", seed=0)
    info = tiny_training_step(tmp_path / "demos", tmp_path, chunk=10,
                              action_norm={"bounds": "fixed", "clip": 1.0, "fixed_bound": 0.65})
    assert info["norm_stats"]["kind"] == "fixed" and (tmp_path / "pol" / "policy.json").is_file()


def test_paper_scale_source_without_data_names_the_dataset(tmp_path):
    from vlm4vla.data.sources import build_demos
    bench = {"demos": {"source": "calvin", "path": str(tmp_path / "data/calvin/task_ABC_D")},
             "image_size": 224, "tasks": ["open_drawer"], "demos_per_task": 1}
    with pytest.raises(FileNotFoundError, match=r"task_ABC_D: not a folder\. Download CALVIN's task_ABC_D"):
        build_demos(bench, tmp_path / "out", seed=0)
