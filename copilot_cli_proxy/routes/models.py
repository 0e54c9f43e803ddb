"""GET /v1/models and /v1/models/{id}: what the CLI itself says it can run."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from copilot_cli_proxy.errors import ProxyError, clip
from copilot_cli_proxy.gateway.router import ListedModel
from copilot_cli_proxy.routes.common import JSONBody, services


def model_body(model: ListedModel, created: int) -> dict[str, Any]:
    return {"id": model.id, "object": "model", "created": created, "owned_by": model.owned_by}


async def list_models(request: Request) -> Response:
    svc = services(request)
    models = await svc.gateway.list_models()
    created = int(svc.started_at)
    return JSONBody({"object": "list", "data": [model_body(m, created) for m in models]})


async def get_model(request: Request) -> Response:
    svc = services(request)
    wanted = request.path_params["model_id"]
    models = await svc.gateway.list_models()
    for model in models:
        if model.id == wanted:
            return JSONBody(model_body(model, int(svc.started_at)))
    raise ProxyError(
        "model_not_found",
        f"The model {clip(repr(wanted))} does not exist or is not served here. "
        f"Available models: {', '.join(m.id for m in models)}.",
        param="model",
    )
