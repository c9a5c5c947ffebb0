"""vlm4vla: the library behind the VLM4VLA reproduction workflow.

Data flows one way: config -> workflow rules -> thin CLIs in workflow_scripts/ -> this
package. Nothing here imports from rules or scripts; simulators (`vlm4vla.sim`) and models
(`vlm4vla.models`) know nothing of each other; only `vlm4vla.eval` brings them together.
"""

__version__ = "0.1.0"
