"""The operator's REST paths: the core group under /api, every other group under /apis,
each part quoted so that no name can reach another path."""

from __future__ import annotations

import asyncio

import kopf
from aiohttp import web

from mediaplane.operator.kube import Kube
from mediaplane.operator.rest import KubeApiError, KubeRest, path


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


def test_a_create_in_a_namespace_being_deleted_makes_nothing_and_raises_nothing() -> None:
    """The API server's NamespaceLifecycle answer, as it sends it, from a loopback server:
    a tenant deleted with its assets in flight is routine, not an operator error."""
    refusal = {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
               "message": 'jobs.batch "mda-x-probe" is forbidden: unable to create new '
                          "content in namespace t-a because it is being terminated",
               "details": {"name": "mda-x-probe", "kind": "jobs",
                           "causes": [{"reason": "NamespaceTerminating",
                                       "message": "namespace t-a is being terminated",
                                       "field": "metadata.namespace"}]}}

    async def run() -> tuple[bool, KubeApiError]:
        async def refuse(request: web.Request) -> web.Response:
            status = 403 if request.path.endswith("/jobs") else 404
            return web.json_response(refusal if status == 403 else {"reason": "NotFound"},
                                     status=status)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", refuse)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        rest = KubeRest(kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}"), timeout=5)
        try:
            created = await Kube(rest).create_job(
                {"metadata": {"name": "mda-x-probe", "namespace": "t-a"}})
            try:
                await rest.request("GET", path("", "v1", "pods", "t-a", "p"))
            except KubeApiError as error:
                missing = error
        finally:
            await rest.close()
            await runner.cleanup()
        return created, missing

    created, missing = asyncio.run(run())
    assert created is False
    assert missing.missing
    assert not missing.namespace_terminating


def test_a_busy_api_server_is_asked_again_after_its_retry_after() -> None:
    """429 "storage is (re)initializing" is what a fresh API server answers for a resource
    whose cache is not ready: the request waits and is sent again, not failed."""
    answers = [429, 429, 200]

    async def run() -> dict[str, object]:
        async def busy(request: web.Request) -> web.Response:
            status = answers.pop(0)
            if status == 429:
                return web.json_response({"reason": "TooManyRequests",
                                          "message": "storage is (re)initializing"},
                                         status=429, headers={"Retry-After": "0"})
            return web.json_response({"items": [{"metadata": {"name": "e"}}]})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", busy)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        rest = KubeRest(kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}"), timeout=5)
        try:
            return await rest.request("GET", path("media.mediaplane.io", "v1alpha1",
                                                  "webhookendpoints", "t-a"))
        finally:
            await rest.close()
            await runner.cleanup()

    assert asyncio.run(run())["items"] == [{"metadata": {"name": "e"}}]
    assert answers == []
