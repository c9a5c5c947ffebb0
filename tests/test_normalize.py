import numpy as np

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
