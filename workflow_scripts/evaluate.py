"""Closed-loop evaluation of a trained policy on held-out initial states."""

import functools

from vlm4vla import cli, pipeline


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--benchmark", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--policy", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--workers", type=int, default=None, help="default: evaluate.workers")
    args = p.parse_args()
    cfg = cli.load(args)
    spec = pipeline.eval_spec(cfg, args.benchmark, args.model)

    from vlm4vla.eval.rollout import evaluate
    from vlm4vla.train.vla import load_policy

    workers = args.workers or cfg["evaluate"]["workers"]
    summary = evaluate(functools.partial(load_policy, args.policy), spec["bench"], spec["evaluate"],
                       seed=spec["seed"], out_dir=args.out, workers=workers)
    for task, s in sorted(summary["tasks"].items()):
        print(f"[eval] {task}: {s['successes']}/{s['n']} successes, {s['errors']} errors")
    o = summary["overall"]
    print(f"[eval] overall: {o['successes']}/{o['n']} = {100 * o['success_rate']:.1f}% "
          f"(Wilson 95% [{100 * o['wilson_low']:.1f}, {100 * o['wilson_high']:.1f}])")


if __name__ == "__main__":
    cli.run(main)
