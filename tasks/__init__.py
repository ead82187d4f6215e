"""Built-in benchmarks of pixel-harness, installed as the import package ``harness_tasks``.

One module per benchmark (``vstar``, ``tallyqa``, ``infovqa``, ``mvbench``), each a frozen
:class:`harness.task.TaskSpec` built from small functions and registered through the
``harness_register_tasks`` hook like any third-party plugin. ``synthetic`` holds the deterministic
drawing and file helpers their offline generators share: each generator writes a small data set
in the real benchmark's file layout and schema, then reads it back with the task's own loader.
"""

#: The task modules, registered as built-in plugins (in this order) by :mod:`harness.plugins`.
PLUGINS: tuple[str, ...] = (
    "harness_tasks.vstar",
    "harness_tasks.tallyqa",
    "harness_tasks.infovqa",
    "harness_tasks.mvbench",
)
