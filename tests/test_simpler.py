"""SimplerEnv-Bridge plugin: protocol constants; a clear error without ManiSkill 3."""

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
