"""The mediaplane operator: kopf handlers over MediaAsset and TranscodeJob.

Handlers (handlers.py) stay thin; what to create is decided by pure functions
(builders.py, assetstatus.py, manifests.py) that unit tests call directly.
"""
