"""The FastAPI app over one bundle: predict (JSON, CSV, images), health, metadata, drift, a page.

The bundle is loaded once per worker process, when the app is created. Endpoints are ``async`` and
run in the worker's event loop (one forward pass at a time, no locks needed); a request's rows go
through the model as one batch. With ``batch_window_ms > 0`` concurrent single-row requests are
gathered for that long and run as one forward pass (:mod:`dlpipe.serving.batching`).

Errors follow the CLI's rule: one sentence in ``{"detail": ...}``; bad input is 422, malformed JSON
400, a missing/wrong API key 401, a body over the limit 413, an unsupported content type 415.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import json
import os
import warnings
from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from dlpipe.core.errors import DataWarning, DlpipeError, InvalidInputError

if TYPE_CHECKING:
    from dlpipe.bundle.bundle import Bundle

__all__ = ["ServeConfig", "create_app"]

_OPEN_PATHS = {"/", "/health", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}


@dataclass(frozen=True)
class ServeConfig:
    """How a server runs one bundle (plain JSON fields: worker processes read it from the environment).

    Args:
        bundle: The bundle folder.
        api_key_env: Name of the environment variable holding the API key (None: no key). Defaults to `None`.
        batch_window_ms: Micro-batching window for single-row requests (0: off). Defaults to `0.0`.
        max_body_mb: Largest accepted request body in MB. Defaults to `10.0`.
        drift_window: How many recent input rows ``GET /drift`` compares. Defaults to `1000`.
        max_batch_rows: A micro-batch runs as soon as it holds this many rows. Defaults to `256`.
    """

    bundle: str
    api_key_env: str | None = None
    batch_window_ms: float = 0.0
    max_body_mb: float = 10.0
    drift_window: int = 1000
    max_batch_rows: int = 256

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, text: str) -> ServeConfig:
        return cls(**json.loads(text))


class _HTTPError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


def create_app(bundle: Bundle | str, config: ServeConfig | None = None, *, api_key: str | None = None) -> FastAPI:
    """Build the app for a bundle (object or folder).

    Args:
        bundle: A loaded :class:`~dlpipe.Bundle` or its folder.
        config: Server options; defaults to :class:`ServeConfig` for the bundle.
        api_key: The key requests must send (``X-API-Key`` or ``Authorization: Bearer``); when None,
            the variable named by ``config.api_key_env`` is read. Defaults to `None`.
    """
    import torch

    from dlpipe.bundle.bundle import Bundle, load_bundle
    from dlpipe.serving.batching import MicroBatcher
    from dlpipe.serving.page import render_page
    from dlpipe.serving.rows import RowEncoder

    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    cfg = config or ServeConfig(bundle=str(bundle) if not isinstance(bundle, Bundle) else "")
    if api_key is None and cfg.api_key_env:
        api_key = os.environ.get(cfg.api_key_env) or None
        if api_key is None:
            raise InvalidInputError(
                f"`--api-key-env` names {cfg.api_key_env!r} but that environment variable is empty or unset; export it or drop the flag."
            )
    # Each worker runs one forward pass at a time: more threads per worker only contend for the cores.
    torch.set_num_threads(1)
    encoder = RowEncoder(b.preprocessor) if b.kind == "table" else None
    reference = b.manifest.get("reference_statistics") or {}
    recent: deque[dict[str, Any]] = deque(maxlen=max(cfg.drift_window, 1))
    limit = int(cfg.max_body_mb * 1e6)

    model = b.model.eval()

    def run_model(inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        # the model stays in eval mode for the worker's life: no per-request mode switching
        with torch.inference_mode():
            logits = model(*(torch.from_numpy(a) for a in inputs))
        return b.task.decode(logits.float().numpy())

    batcher = MicroBatcher(run_model, cfg.batch_window_ms / 1000.0, cfg.max_batch_rows) if cfg.batch_window_ms > 0 else None
    classes = [_plain(c) for c in b.classes] if b.classes is not None else None

    def rows_json(labels: np.ndarray, proba: np.ndarray | None) -> list[dict[str, Any]]:
        values = labels.tolist()
        if proba is None or classes is None:
            return [{"prediction": v} for v in values]
        p = proba.tolist()
        return [{"prediction": v, "probabilities": dict(zip(classes, ps))} for v, ps in zip(values, p)]

    app = FastAPI(
        title=f"dlpipe · {b.task.kind} · {b.task.target}",
        version=str(b.manifest.get("versions", {}).get("dlpipe", "")),
        description=_describe(b),
    )
    app.state.bundle = b
    app.state.config = cfg
    app.state.batcher = batcher

    # ------------------------------------------------------------------ middleware
    app.add_middleware(_Guard, api_key=api_key, limit=limit)

    @app.exception_handler(_HTTPError)
    async def _http_error(request: Request, exc: _HTTPError) -> Any:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(DlpipeError)
    async def _dlpipe_error(request: Request, exc: DlpipeError) -> Any:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    async def read_body(request: Request) -> bytes:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _HTTPError(413, _too_large_text(limit))
        return bytes(body)

    # ------------------------------------------------------------------ endpoints
    @app.get("/health", summary="Liveness: the model is loaded and answering")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "kind": b.kind, "task": b.task.kind, "target": b.task.target}

    @app.get("/metadata", summary="Task, input schema, labels, metrics, versions")
    async def metadata() -> dict[str, Any]:
        return _metadata(b, cfg, encoder)

    @app.post(
        "/predict",
        summary="Predict for JSON rows (tables), base64 images or arrays; multipart image upload",
        openapi_extra={"requestBody": _request_schema(b, encoder, reference)},
    )
    async def predict(request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            return await _predict_upload(request)
        if ctype not in ("application/json", ""):
            raise _HTTPError(415, f"content type {ctype!r} is not accepted here; send JSON (`application/json`) like {{\"rows\": [...]}}" + (", or images as multipart/form-data." if b.kind == "image" else "."))
        body = await read_body(request)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _HTTPError(400, f"the request body is not valid JSON ({exc}); send an object such as {{\"rows\": [...]}}.") from None
        if not isinstance(payload, dict):
            raise _HTTPError(422, "the request body must be a JSON object with a `rows` list" + (" (or `images`)." if b.kind == "image" else "."))
        if encoder is not None:
            rows = encoder.validate(payload.get("rows"))
            inputs = encoder.encode(rows)
            recent.extend(rows)
            if batcher is not None and len(rows) == 1:
                labels, proba = await batcher.submit(inputs)
            else:
                labels, proba = run_model(inputs)
            return Response(json.dumps({"predictions": rows_json(labels, proba)}), media_type="application/json")
        return _generic(payload)

    def _generic(payload: dict[str, Any]) -> Response:
        if "images" in payload:
            images = payload["images"]
            if not isinstance(images, list) or not images:
                raise InvalidInputError("`images` must be a non-empty list of base64-encoded image files.")
            data: Any = [_decode_image(_b64(s, i), f"image {i}") for i, s in enumerate(images)]
        elif "rows" in payload:
            data = payload["rows"]
            if not isinstance(data, list) or not data:
                raise InvalidInputError("`rows` must be a non-empty list of objects, one per row.")
        elif "inputs" in payload:
            data = payload["inputs"]
            if not isinstance(data, list) or not data:
                raise InvalidInputError("`inputs` must be a non-empty list (one array per case).")
            try:
                data = np.asarray(data, dtype=np.float32)
            except ValueError:
                data = [np.asarray(x, dtype=np.float32) for x in data]
        else:
            raise InvalidInputError(f"the request body needs `rows`, `images` or `inputs`; this {b.kind} model takes {_input_hint(b)}.")
        return _frame_json(_quiet_predict(b, data))

    async def _predict_upload(request: Request) -> Response:
        length = int(request.headers.get("content-length") or 0)
        if length > limit:
            raise _HTTPError(413, _too_large_text(limit))
        if b.kind != "image":
            raise _HTTPError(415, f"this {b.kind} model takes JSON (`application/json`) like {{\"rows\": [...]}}; for a CSV file use POST /predict/csv.")
        async with request.form() as form:  # closes the spooled upload files
            files = [v for _, v in form.multi_items() if hasattr(v, "read")]
            if not files:
                raise InvalidInputError("the multipart upload holds no file; attach one or more image files.")
            images = [_decode_image(await f.read(), f"file {getattr(f, 'filename', i)!r}") for i, f in enumerate(files)]
        return _frame_json(_quiet_predict(b, images))

    @app.post(
        "/predict/csv",
        summary="Upload a CSV (multipart field `file`, or a text/csv body); get predictions back as CSV",
        response_class=Response,
        openapi_extra={"requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}, "required": ["file"]}}, "text/csv": {"schema": {"type": "string"}}}}},
    )
    async def predict_csv(request: Request) -> Response:
        import pandas as pd

        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            async with request.form() as form:  # closes the spooled upload files
                files = [v for _, v in form.multi_items() if hasattr(v, "read")]
                if not files:
                    raise InvalidInputError("the multipart upload holds no file; attach the CSV as the field `file`.")
                raw = await files[0].read()
        elif ctype in ("text/csv", "text/plain", "application/csv"):
            raw = await read_body(request)
        else:
            raise _HTTPError(415, f"content type {ctype or 'none'!r} is not accepted here; upload the CSV as multipart/form-data (field `file`) or send it with `content-type: text/csv`.")
        try:
            frame = pd.read_csv(io.BytesIO(raw))
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise InvalidInputError(f"the upload could not be read as CSV ({str(exc).splitlines()[0]}); send a comma-separated file with a header row.") from None
        preds = _quiet_predict(b, frame)
        if b.kind == "table":
            names = [n for n in b.input_columns if n in frame.columns]
            recent.extend({str(k): v for k, v in r.items()} for r in frame[names].head(cfg.drift_window).to_dict("records"))
        out = pd.concat([frame.reset_index(drop=True), preds.reset_index(drop=True)], axis=1) if len(preds) == len(frame) else preds
        return Response(out.to_csv(index=False), media_type="text/csv")

    @app.get("/drift", summary="Drift of the recent inputs against the training inputs (KS, chi-square, PSI)")
    async def drift(level: float = 0.05) -> dict[str, Any]:
        import pandas as pd

        from dlpipe.monitoring import detect_drift

        if b.kind != "table":
            raise _HTTPError(404, f"drift checks cover table bundles; this is a {b.kind} bundle.")
        if not recent:
            return {"rows": 0, "window": cfg.drift_window, "drifted": [], "features": [], "note": "no rows predicted yet; the check compares the most recent predicted rows with the training inputs."}
        report = detect_drift(b, pd.DataFrame(list(recent)), level=level)
        return {"window": cfg.drift_window, **report.to_dict()}

    @app.get("/", response_class=HTMLResponse, summary="A form built from the input schema")
    async def page() -> HTMLResponse:
        return HTMLResponse(render_page(b, encoder, reference, needs_key=api_key is not None))

    return app


# ---------------------------------------------------------------------- helpers
class _Guard:
    """Plain ASGI middleware (BaseHTTPMiddleware costs ~0.5 ms a request): API key, then body size."""

    def __init__(self, app: Any, api_key: str | None, limit: int) -> None:
        self.app, self.key, self.limit = app, api_key.encode() if api_key else None, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if self.key is not None and scope["path"] not in _OPEN_PATHS:
                sent = headers.get(b"x-api-key") or _bearer_bytes(headers.get(b"authorization"))
                if not sent or not hmac.compare_digest(sent, self.key):
                    await _send_json(send, 401, "this server needs an API key; send it in the `X-API-Key` header (or `Authorization: Bearer <key>`).",
                                     [(b"www-authenticate", b"Bearer")])
                    return
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.limit:
                await _send_json(send, 413, _too_large_text(self.limit))
                return
        await self.app(scope, receive, send)


async def _send_json(send: Any, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _bearer_bytes(header: bytes | None) -> bytes | None:
    if header and header[:7].lower() == b"bearer ":
        return header[7:].strip()
    return None


def _quiet_predict(b: Bundle, data: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return b.predict(data)


def _frame_json(frame: Any) -> Any:
    rows = []
    proba_cols = [c for c in frame.columns if str(c).startswith("proba_")]
    other = [c for c in frame.columns if c not in proba_cols]
    for rec in frame.to_dict("records"):
        row = {str(k): _plain(rec[k]) for k in other}
        if proba_cols:
            row["probabilities"] = {str(c)[6:]: float(rec[c]) for c in proba_cols}
        rows.append(row)
    return Response(json.dumps({"predictions": rows}, default=str), media_type="application/json")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _too_large_text(limit: int) -> str:
    return f"the request body is over the limit of {limit / 1e6:g} MB; send fewer rows per request or start the server with a larger `--max-body-mb`."


def _b64(text: Any, i: int) -> bytes:
    if not isinstance(text, str):
        raise InvalidInputError(f"image {i} is a {type(text).__name__} but must be a base64 string of an image file.")
    if "," in text[:100] and text.startswith("data:"):
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"image {i} is not valid base64; encode the image file's bytes with base64.") from None


def _decode_image(data: bytes, what: str) -> Any:
    """Bytes -> a loaded PIL image, or one clear 422 when they are not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InvalidInputError(f"{what} is not an image that could be read ({len(data)} bytes); send a PNG, JPEG, BMP or GIF file.") from None
    return im


def _input_hint(b: Bundle) -> str:
    return {
        "image": "`images`: a list of base64-encoded image files (or a multipart upload)",
        "series": "`rows`: the most recent rows of the series, oldest first",
        "sequence": "`inputs`: a list of sequences, each a list of time steps",
    }.get(b.kind, "`inputs`: a list of arrays")


def _describe(b: Bundle) -> str:
    metrics = b.metrics.get("test", {})
    primary = metrics.get("primary_metric")
    score = metrics.get("model", {}).get(primary) if primary else None
    text = f"A dlpipe {b.kind} model predicting `{b.task.target}` ({b.task.kind})."
    if score is not None:
        text += f" Test {primary}: {score:.4f}."
    return text + " POST /predict with JSON; the page at / is a form built from the input schema."


def _metadata(b: Bundle, cfg: ServeConfig, encoder: Any) -> dict[str, Any]:
    schema: Any = None
    if encoder is not None:
        schema = [
            {"name": c["name"], "kind": c["kind"], **({"categories": encoder.categories[c["name"]]} if c["name"] in encoder.categories else {})}
            for c in encoder.columns
        ]
    return {
        "kind": b.kind,
        "task": b.task.kind,
        "target": b.task.target,
        "classes": [_plain(c) for c in b.classes] if b.classes is not None else None,
        "inputs": schema if schema is not None else b.input_columns,
        "metrics": b.metrics,
        "model": {"family": b.manifest.get("model_spec", {}).get("family"), "n_parameters": int(sum(p.numel() for p in b.model.parameters()))},
        "versions": b.manifest.get("versions", {}),
        "server": {"batch_window_ms": cfg.batch_window_ms, "max_body_mb": cfg.max_body_mb, "drift_window": cfg.drift_window},
    }


def _request_schema(b: Bundle, encoder: Any, reference: dict[str, Any]) -> dict[str, Any]:
    if encoder is None:
        content: dict[str, Any] = {"application/json": {"schema": {"type": "object", "description": _input_hint(b)}}}
        if b.kind == "image":
            content["multipart/form-data"] = {"schema": {"type": "object", "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}
        return {"required": True, "content": content}
    props: dict[str, Any] = {}
    for c in encoder.columns:
        name, kind = c["name"], c["kind"]
        if kind == "numeric":
            props[name] = {"type": ["number", "null"]}
        elif kind == "boolean":
            props[name] = {"type": ["boolean", "null"]}
        elif kind == "datetime":
            props[name] = {"type": ["string", "null"], "format": "date-time"}
        else:
            props[name] = {"type": ["string", "null"], "enum": [*encoder.categories.get(name, [])[:100], None]}
    row = {"type": "object", "properties": props, "required": encoder.names}
    schema = {"type": "object", "required": ["rows"], "properties": {"rows": {"type": "array", "minItems": 1, "items": row}}}
    return {"required": True, "content": {"application/json": {"schema": schema, "example": {"rows": [encoder.example_row(reference)]}}}}
