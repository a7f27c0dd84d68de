"""Shared vocabulary of mediaplane: names, object keys, the worker protocol, the ladder,
and the storage client the operator and the API share.

Everything but `storage` is pure (no I/O), so the operator, the worker and the API agree
on it without importing one another.
"""
