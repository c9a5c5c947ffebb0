import numpy as np
import pytest

from vlm4vla.data.normalize import ActionNormalizer


def _actions(n=1000, seed=0):
    rs = np.random.RandomState(seed)
    a = rs.uniform(-2, 3, (n, 7)).astype(np.float32)
    a[:, 3:6] = 0.0  # Meta-World: no rotation -> degenerate dims
    a[:, 6] = np.where(rs.rand(n) > 0.5, 1.0, -1.0)
    return a


def test_formula_and_gripper():
    norm = ActionNormalizer(low=[0, -1, 0, 0, 0, 0], high=[2, 1, 1, 0, 0, 0])
    z = norm.normalize(np.array([[1.0, 0.5, 0.0, 5, 5, 5, 1.0], [3.0, -1.0, 0.75, 0, 0, 0, -1.0]]))
    # dim0: mid -> 0; dim1: 0.5 -> 0.5; dim2: low -> -1; degenerate -> 0; gripper close -> 1
    np.testing.assert_allclose(z[0], [0, 0.5, -1, 0, 0, 0, 1], atol=1e-7)
    # dim0: above high -> clipped -> 1; dim1: low -> -1; dim2: 0.75 -> 0.5; open -> 0
    np.testing.assert_allclose(z[1], [1, -1, 0.5, 0, 0, 0, 0], atol=1e-7)
    assert z.dtype == np.float32


def test_q01_q99_round_trip_and_degenerate_dims():
    acts = _actions()
    norm = ActionNormalizer.fit(acts)
    np.testing.assert_allclose(norm.low[:3], np.quantile(acts[:, :3].astype(np.float64), 0.01, axis=0))
    assert np.all(norm.degenerate[3:]) and not np.any(norm.degenerate[:3])
    inside = np.all((acts[:, :6] >= norm.low) & (acts[:, :6] <= norm.high), axis=1)
    assert inside.mean() > 0.9
    z = norm.normalize(acts)
    assert np.all(np.isfinite(z)) and np.abs(z).max() <= 1.0
    back = norm.unnormalize(z[:, :6], z[:, 6])
    np.testing.assert_allclose(back[inside], acts[inside], atol=1e-5)
    np.testing.assert_array_equal(back[:, 3:6], 0.0)   # degenerate dims map back to low
    np.testing.assert_array_equal(back[:, 6], acts[:, 6])  # {0,1} -> {-1,+1}
    # outliers saturate at the bounds
    np.testing.assert_allclose(norm.unnormalize(np.ones((1, 6)), np.array([0.9]))[0, :3], norm.high[:3])


def test_calvin_fixed_bounds_match_clip_then_rescale():
    norm = ActionNormalizer.fixed(-0.65, 0.65)
    x = np.array([[0.1, -0.3, 0.65, 0.9, -1.0, 0.0, 1.0]])
    np.testing.assert_allclose(norm.normalize(x)[0, :6], np.clip(x[0, :6], -0.65, 0.65) / 0.65, atol=1e-6)


def test_json_round_trip(tmp_path):
    norm = ActionNormalizer.fit(_actions())
    norm.save(tmp_path / "stats.json")
    again = ActionNormalizer.load(tmp_path / "stats.json")
    acts = _actions(seed=1)
    np.testing.assert_array_equal(norm.normalize(acts), again.normalize(acts))


# --- the official Bridge / LIBERO transform (CladernyJorn/VLM4VLA at 20fedc9), transcribed ----
def _official_train(x, q01, q99, c=0.65):
    # openvla/prismatic/vla/datasets/rlds/utils/data_utils.py:88-92 (BOUNDS_Q99, chosen for
    # Bridge / LIBERO by vlm4vla/data/base_openvla_dataset.py:74)
    y = np.clip(2 * (x - q01) / (q99 - q01 + 1e-8) - 1, -1, 1)
    # vlm4vla/data/data_utils.py:568-574 normalize_action(y, -0.65, 0.65), applied by
    # base_action_prediction_dataset.py:115-116 (configs/oxe_training/*: norm_min/max -+0.65)
    y = np.clip(y, -c, c)
    return 2 * (y + c) / (2 * c) - 1


def _official_eval(y, q01, q99, c=0.65):
    # eval/calvin/model_wrapper.py:357-366 unnoramalize_action(y, -0.65, 0.65), then
    # eval/libero/model_wrapper.py:187-193 (q01/q99 inverse)
    y = 0.5 * (y + 1) * (2 * c) - c
    return 0.5 * (y + 1) * (q99 - q01) + q01


def test_clip_065_reproduces_the_official_bridge_libero_transform():
    rng = np.random.default_rng(0)
    actions = np.concatenate([rng.normal(0, [0.3, 0.2, 0.5, 0.05, 0.1, 0.2], (4000, 6)),
                              rng.choice([-1.0, 1.0], (4000, 1))], axis=1)
    norm = ActionNormalizer.fit(actions, clip=0.65)
    q01, q99 = np.quantile(actions[:, :6], 0.01, axis=0), np.quantile(actions[:, :6], 0.99, axis=0)
    probe = rng.normal(0, [0.4, 0.3, 0.6, 0.08, 0.15, 0.3], (500, 6))  # in range and beyond
    ours = norm.normalize(np.concatenate([probe, np.ones((500, 1))], axis=1))[:, :6]
    np.testing.assert_allclose(ours, _official_train(probe, q01, q99), atol=1e-5)
    assert (np.abs(ours) == 1).mean() > 0.1  # deltas beyond 65% of the q01..q99 range saturate
    y = rng.uniform(-1, 1, (500, 6))
    back = norm.unnormalize(y, np.zeros(500))[:, :6]
    np.testing.assert_allclose(back, _official_eval(y, q01, q99), rtol=1e-5, atol=1e-6)
    assert norm.to_dict()["kind"] == "q01_q99_clip0.65"
    # clip 1 is plain q01/q99 (Meta-World and the embedded default); bad values are named
    np.testing.assert_allclose(ActionNormalizer.fit(actions, clip=1.0).low, q01)
    with pytest.raises(ValueError, match="clip=1.5"):
        ActionNormalizer.fit(actions, clip=1.5)


def test_action_norm_config_picks_the_mode():
    actions = np.linspace(-1, 1, 700).reshape(100, 7)
    assert ActionNormalizer.from_config(None, actions).kind == "q01_q99"
    fixed = ActionNormalizer.from_config({"bounds": "fixed", "clip": 1.0, "fixed_bound": 0.65}, actions)
    assert fixed.kind == "fixed" and np.allclose(fixed.high, 0.65)  # official CALVIN
    assert ActionNormalizer.from_config({"bounds": "q01_q99", "clip": 0.65, "fixed_bound": 0.65},
                                        actions).kind == "q01_q99_clip0.65"
