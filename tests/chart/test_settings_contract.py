"""The chart and the programs agree: every value set renders an environment that the
API's and the operator's own settings classes accept, with the values the chart meant.

Secrets are not rendered values (valueFrom), so the test stands in a value of the shape
the chart's Secret holds (48 random characters) for each of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import pytest

from mediaplane.api.settings import ApiSettings
from mediaplane.core.settings import S3Settings
from mediaplane.operator.settings import OperatorSettings
from tests.chart.helm import VALUE_SETS, Rendered, container, env_of, template

SECRET_STAND_IN = "s" * 48


def _environment(deployment: Mapping[str, Any]) -> dict[str, str]:
    env = {}
    for name, value in env_of(deployment).items():
        env[name] = value if isinstance(value, str) else SECRET_STAND_IN
    return env


def _only(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment is exactly the container's, as far as mediaplane reads it."""
    for name in list(os.environ):
        if name.startswith("MEDIAPLANE_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_rendered_environment_is_accepted_by_the_programs(
        value_set: str, monkeypatch: pytest.MonkeyPatch) -> None:
    out = Rendered.of(template(VALUE_SETS[value_set]))
    deployments = {d["metadata"]["name"].rsplit("-", 1)[-1]: d for d in out.all("Deployment")}
    api_env = _environment(deployments["api"])
    _only(api_env, monkeypatch)
    api, s3 = ApiSettings(), S3Settings()
    assert api.public_url == api_env["MEDIAPLANE_API_PUBLIC_URL"]
    assert s3.bucket == api_env["MEDIAPLANE_S3_BUCKET"]
    command = container(deployments["api"])["command"]
    assert command[command.index("--port") + 1] == "8080"  # the Service's targetPort
    operator_env = _environment(deployments["operator"])
    _only(operator_env, monkeypatch)
    operator = OperatorSettings()
    assert list(operator.worker_command) == json.loads(operator_env["MEDIAPLANE_WORKER_COMMAND"])
    assert operator.worker_image == operator_env["MEDIAPLANE_WORKER_IMAGE"]
    # Caption requests are idempotent on the model: the API and the operator name the same.
    assert operator.speech_model == api.speech_model
    values = VALUE_SETS[value_set]
    if values and "\nspeech:" in values[0].read_text():  # a top-level speech section
        assert operator.speech_model == "whisper-small"
        assert operator.speech_model_volume == {
            "persistentVolumeClaim": {"claimName": "whisper-small-ct2", "readOnly": True}}
        assert (operator.caption_parallelism, operator.auto_captions) == (8, "en")
        assert operator.auto_captions_review is True
