"""The operator's REST paths: the core group under /api, every other group under /apis,
each part quoted so that no name can reach another path."""

from __future__ import annotations

from mediaplane.operator.rest import KubeApiError, path


def test_core_and_named_groups_and_subresources() -> None:
    assert path("", "v1", "pods", "t-a") == "/api/v1/namespaces/t-a/pods"
    assert path("", "v1", "namespaces", None, "t-a") == "/api/v1/namespaces/t-a"
    assert path("batch", "v1", "jobs", "t-a", "j") == "/apis/batch/v1/namespaces/t-a/jobs/j"
    assert (path("media.mediaplane.io", "v1alpha1", "mediaassets", "t-a", "mda-x", "status")
            == "/apis/media.mediaplane.io/v1alpha1/namespaces/t-a/mediaassets/mda-x/status")


def test_a_name_cannot_climb_out_of_its_path() -> None:
    assert path("", "v1", "secrets", "t-a", "../../kube-system/secrets/x") == \
        "/api/v1/namespaces/t-a/secrets/..%2F..%2Fkube-system%2Fsecrets%2Fx"


def test_errors_say_missing_and_already_exists() -> None:
    assert KubeApiError(404, "NotFound", "gone").missing
    assert KubeApiError(409, "AlreadyExists", "there").exists
    assert not KubeApiError(403, "Forbidden", "no").missing
