"""The API docs pages and the answers' OpenAPI schemas.

``/docs`` (Swagger UI) and ``/redoc`` load their scripts and styles from ``/docs/assets/``, files that
the ``serve`` extra installs (the ``fastapi-offline`` package ships Swagger UI's and ReDoc's builds):
the pages work on a machine without internet access, where FastAPI's defaults (a CDN) leave them blank.

The response schemas say what a 200 holds for this bundle's task (prediction type, class names as
probability keys) with an example, and what an error holds (``{"detail": "<one sentence>"}``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from dlpipe.core.runtime import require

__all__ = ["ASSET_PREFIX", "asset", "asset_urls", "predict_responses", "csv_responses"]

ASSET_PREFIX = "/docs/assets/"
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}


def _asset_dir() -> Path:
    module = require("fastapi_offline", extra="serve")
    return Path(str(module.__file__)).parent / "static"


def asset_urls(root: str) -> dict[str, str]:
    """The docs pages' script/style/icon URLs under the app's root path."""
    base = root + ASSET_PREFIX
    return {
        "swagger_js_url": base + "swagger-ui-bundle.js",
        "swagger_css_url": base + "swagger-ui.css",
        "swagger_favicon_url": base + "favicon.png",
        "redoc_js_url": base + "redoc.standalone.js",
        "redoc_favicon_url": base + "favicon.png",
    }


@cache
def asset(name: str) -> tuple[bytes, str] | None:
    """An asset's bytes and media type (read once per process), or None for a name not on the list."""
    media = _ASSETS.get(name)
    if media is None:
        return None
    return (_asset_dir() / name).read_bytes(), media


def check_assets() -> None:
    """Fail at start-up, not at the first docs visit, when the extra's files are missing."""
    root = _asset_dir()
    missing = [n for n in _ASSETS if not (root / n).is_file()]
    if missing:
        raise ImportError(
            f"the docs pages' files {missing} are missing from {root}; run `pip install 'dlpipe[serve]'` again."
        )


def _error(description: str, example: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["detail"],
                    "properties": {"detail": {"type": "string", "description": "one sentence"}},
                },
                "example": {"detail": example},
            }
        },
    }


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error(
        "The body is not valid JSON",
        'the request body is not valid JSON (Expecting value: line 1 column 9 (char 8)); send an object such as {"rows": [...]}.',
    ),
    401: _error(
        "This server needs an API key",
        "this server needs an API key; send it in the `X-API-Key` header (or `Authorization: Bearer <key>`, or as the password of a browser's login prompt).",
    ),
    415: _error(
        "Unsupported content type",
        "content type 'text/xml' is not accepted here; send JSON (`application/json`) like {\"rows\": [...]}.",
    ),
    422: _error(
        "Bad input: one sentence saying what was wrong and how to fix it",
        "field 'age' of row 0 is 'forty' (string) but must be a number (or null).",
    ),
}


def _prediction_schema(task: str, classes: list[Any] | None) -> dict[str, Any]:
    if classes is not None:
        kinds = sorted({"integer" if isinstance(c, int) else "string" for c in classes})
        return {
            "type": kinds[0] if len(kinds) == 1 else kinds,
            "enum": classes,
            "description": "the most probable class",
        }
    if task == "regression":
        return {"type": "number", "description": "the predicted value in the target's units"}
    return {"description": "the model's output for this case"}


def predict_responses(
    task: str, classes: list[Any] | None, example: dict[str, Any] | None, too_large: str
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for POST /predict: the 200's schema (by task) with an example, and the errors."""
    item: dict[str, Any] = {
        "type": "object",
        "required": ["prediction"],
        "properties": {"prediction": _prediction_schema(task, classes)},
    }
    if classes is not None:
        item["properties"]["probabilities"] = {
            "type": "object",
            "description": "each class's probability (they sum to 1)",
            "properties": {str(c): {"type": "number", "minimum": 0, "maximum": 1} for c in classes},
        }
    if task == "regression":
        item["properties"]["intervals"] = {
            "type": "object",
            "description": 'split-conformal prediction intervals by level ("80", "95"): [lower, upper] in the target\'s units (bundles that store them)',
            "additionalProperties": {
                "type": "array",
                "items": {"type": "number"},
                "minItems": 2,
                "maxItems": 2,
            },
        }
    schema = {
        "type": "object",
        "required": ["predictions"],
        "properties": {
            "predictions": {
                "type": "array",
                "items": item,
                "description": "one entry per input case, in the order sent",
            },
            "warnings": {
                "type": "array",
                "items": {"type": "string"},
                "description": "present when some input was treated specially (e.g. a category never seen in training)",
            },
        },
    }
    ok: dict[str, Any] = {"schema": schema}
    if example is not None:
        ok["example"] = example
    return {
        200: {
            "description": "Predictions, one per input case",
            "content": {"application/json": ok},
        },
        **_ERRORS,
        413: _error("The body is over the size limit", too_large),
    }


def csv_responses(
    columns: list[str], example: str | None, too_large: str
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for POST /predict/csv: the uploaded columns followed by the prediction columns."""
    ok: dict[str, Any] = {
        "schema": {
            "type": "string",
            "description": "the uploaded rows with "
            + ", ".join(f"`{c}`" for c in columns)
            + " added",
        }
    }
    if example is not None:
        ok["example"] = example
    return {
        200: {
            "description": "The CSV with prediction columns added (warnings in the X-Dlpipe-Warnings header, a JSON list)",
            "content": {"text/csv": ok},
        },
        **{k: v for k, v in _ERRORS.items() if k != 400},
        413: _error("The body is over the size limit", too_large),
    }


def simple_response(description: str, example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """A 200 that is a JSON object, with an example."""
    return {
        200: {
            "description": description,
            "content": {"application/json": {"schema": {"type": "object"}, "example": example}},
        }
    }
