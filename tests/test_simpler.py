"""SimplerEnv-Bridge plugin: protocol constants; a clear error without ManiSkill 3."""

import numpy as np
import pytest

from vlm4vla.sim import simpler_bridge as sb
from vlm4vla.sim.registry import get_benchmark


def test_protocol_constants():
    bench = get_benchmark("simpler_bridge")
    assert bench.tasks() == ["carrot_on_plate", "eggplant_in_basket", "spoon_on_towel",
                             "stack_cube"]
    assert sb.EPISODES_PER_TASK == 24
    assert sb.MAX_STEPS == {"carrot_on_plate": 60, "eggplant_in_basket": 120,
                            "spoon_on_towel": 60, "stack_cube": 60}
    for t in bench.tasks():
        assert len(bench.instruction(t).split()) >= 3
    with pytest.raises(ValueError):
        bench.instruction("no_such_task")


def test_missing_maniskill_is_a_clear_error():
    try:
        import mani_skill  # noqa: F401
        pytest.skip("mani_skill is installed")
    except ImportError:
        pass
    with pytest.raises(ImportError, match="mani-skill"):
        get_benchmark("simpler_bridge").make_env("carrot_on_plate", 224)


class _FakeManiSkill:
    """Records what the plugin sends; success from the env at steps listed in `succeed_at`."""

    def __init__(self, succeed_at=()):
        self.succeed_at, self.sent = set(succeed_at), []

    OBS = {"sensor_data": {sb.CAMERA: {"rgb": np.zeros((1, 8, 8, 3), np.uint8)}}}

    def reset(self, seed, options):
        self.t = 0
        return self.OBS, {}

    def step(self, action):
        self.sent.append(np.asarray(action)[0])
        self.t += 1
        return self.OBS, 0.0, False, False, {"success": self.t in self.succeed_at}


def test_euler_deltas_become_the_controllers_axis_angle():
    from scipy.spatial.transform import Rotation
    rng = np.random.default_rng(0)
    for e in [*rng.uniform(-0.5, 0.5, (50, 3)), [0, 0, 0], [np.pi, 0, 0], [0.3, -1.2, 2.9]]:
        ref = Rotation.from_euler("xyz", e).as_rotvec()  # static xyz = transforms3d's sxyz
        np.testing.assert_allclose(np.abs(sb.euler_to_axis_angle(e)), np.abs(ref), atol=1e-6)
        np.testing.assert_allclose(Rotation.from_rotvec(sb.euler_to_axis_angle(e)).as_matrix(),
                                   Rotation.from_rotvec(ref).as_matrix(), atol=1e-6)


def test_gripper_opens_after_two_open_predictions_and_success_is_the_last_steps():
    fake = _FakeManiSkill(succeed_at={10})  # a success mid-episode that is not held
    env = sb.SimplerBridgeEnv("carrot_on_plate", 8, env=fake)
    env.reset(3)
    grips = [1, -1, 1, -1, -1, -1, 1]  # ours: +1 close, -1 open
    results = [env.step(np.r_[np.zeros(6), g]) for g in grips]
    assert [a[6] for a in fake.sent] == [-1, -1, -1, -1, 1, 1, -1]  # open only on the 2nd in a row
    assert not any(r.done or r.success for r in results)
    results += [env.step(np.zeros(7)) for _ in range(60 - len(grips))]
    assert [r.done for r in results].index(True) == 59  # the full 60 steps, never ended early
    assert not results[-1].success  # step 10's success was not there at the last step
    fake = _FakeManiSkill(succeed_at={60})
    env = sb.SimplerBridgeEnv("carrot_on_plate", 8, env=fake)
    env.reset(0)
    assert [env.step(np.zeros(7)).success for _ in range(60)] == [False] * 59 + [True]
