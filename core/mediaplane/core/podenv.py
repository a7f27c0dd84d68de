"""What a worker pod's environment holds, by name, in a module that imports nothing.

The worker's launcher (`mediaplane.worker.launch`) reads it before the interpreter has
loaded pydantic or any of our models: a pod's start-up is on the path to playable.
"""

TASK_ENV = "MEDIAPLANE_TASK"  # the WorkerTask, JSON (`core.tasks`)
SCRATCH_ENV = "MEDIAPLANE_SCRATCH"
RESULT_PATH_ENV = "MEDIAPLANE_RESULT_PATH"
# The pod's first command, rendered by the operator from the same task
# (`commands.first_command`): JSON, {"dirs": [...], "argv": [...]}, the directories made
# under the pod's scratch directory before the command starts there. The worker starts it
# at once and adopts it once it has read its task, only if it is exactly that task's.
LAUNCH_ENV = "MEDIAPLANE_LAUNCH"
# The only program a launched command may be.
FFMPEG = "ffmpeg"
