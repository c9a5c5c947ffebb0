# VLM4VLA reproduction workflow: demos (+ auxiliary VQA -> VLM tuning) -> VLA fine-tuning ->
# simulator evaluation -> tables and figures.
#   snakemake --cores all                      everything, embedded default (config/config.yaml)
#   snakemake --cores all table_main           one paper artifact and only what it needs
#   snakemake --cores all --configfile config/test.yaml    the tiny CI configuration
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/stages.smk"


rule all:
    default_target: True
    input:
        all_targets(),
