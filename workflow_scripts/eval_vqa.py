"""Score a VLM on the held-out split of the auxiliary VQA store, every task: the base VLM
(the model as configured, built under the seed the VLA uses) or an aux-tuned one
(--weights, a folder written by finetune_vlm)."""

from vlm4vla import cli, pipeline


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--model", required=True)
    p.add_argument("--vlm", required=True, help="base | aux_<vqa task>")
    p.add_argument("--vqa", required=True, help="VQA store folder")
    p.add_argument("--weights", default=None, help="tuned VLM folder (omit for the base VLM)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    spec = pipeline.vqa_eval_spec(cli.load(args), args.model, args.vlm)
    if (args.vlm == "base") != (args.weights is None):
        raise SystemExit("error: --weights is required for a tuned VLM and refused for 'base'")

    from vlm4vla.train.vqa import evaluate_vqa

    metrics = evaluate_vqa(args.weights or spec["model"], args.vqa, split="eval", out_dir=args.out,
                           batch_size=spec["eval"]["batch_size"],
                           max_new_tokens=spec["eval"]["max_new_tokens"], threads=spec["threads"],
                           seed=spec["seed"])
    for task, m in sorted(metrics.items()):
        print(f"[vqa-eval] {args.model}/{args.vlm} {task}: accuracy {m['accuracy']:.3f} (n={m['n']})")


if __name__ == "__main__":
    cli.run(main)
