"""Tasks: regression, binary, multiclass — each owns its head size, loss and decoding."""

from dlpipe.tasks.task import TASK_KINDS, Task, infer_task

__all__ = ["TASK_KINDS", "Task", "infer_task"]
