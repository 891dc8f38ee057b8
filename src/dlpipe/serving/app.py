"""The FastAPI app over one bundle: predict (JSON, CSV, images), health, metadata, drift, a page.

The bundle is loaded once per worker process, when the app is created. Endpoints are ``async`` and
run in the worker's event loop (one forward pass at a time, no locks needed); a request's rows go
through the model as one batch. With ``batch_window_ms > 0`` concurrent single-row requests are
gathered for that long and run as one forward pass (:mod:`dlpipe.serving.batching`).

Errors follow the CLI's rule: one sentence in ``{"detail": ...}``; bad input is 422, malformed JSON
400, a missing/wrong API key 401, a body over the limit 413, an unsupported content type 415.
Answers are strict JSON: never a bare ``NaN``; a prediction that would be NaN is a 422 (or a 500
when the bundle's weights themselves are not finite). With an API key every path but ``/health``
needs it, the page and the docs included (browsers get a Basic-auth prompt: any user name, the key
as password). Whatever a column, category or target is named, it reaches HTML only escaped or as
JSON data. Body bytes are counted as they arrive (chunked uploads too); slow clients and connection
counts are bounded in :mod:`dlpipe.serving.protocol`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import io
import json
import math
import os
import re
import warnings
from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.requests import ClientDisconnect

from dlpipe.core.errors import DataWarning, DlpipeError, InvalidInputError, NonFiniteOutputError
from dlpipe.serving.docs import ASSET_PREFIX

if TYPE_CHECKING:
    from dlpipe.bundle.bundle import Bundle

__all__ = ["ServeConfig", "create_app"]

# With an API key only liveness stays open; browser-facing paths answer 401 with a Basic challenge
# (the browser asks for the key once and sends it with the page's own requests).
_OPEN_PATHS = frozenset({"/health"})
_BROWSER_PATHS = frozenset({"/", "/docs", "/redoc", "/docs/oauth2-redirect", "/openapi.json"})
_F32_MAX = float(np.finfo(np.float32).max)


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
        header_timeout_s: A request's headers must arrive within this many seconds of the connection
            opening or the previous response, or the connection is closed. Defaults to `10.0`.
        body_timeout_s: A request body that stops arriving for this many seconds gets a 408 and the
            connection is closed. Defaults to `30.0`.
        keep_alive_s: An idle kept-alive connection is closed after this many seconds. Defaults to `5.0`.
        max_connections: Open connections per worker; one more gets a 503. Defaults to `200`.
        max_header_kb: Largest request head (request line and headers), in kB; larger: 431. Defaults to `64`.
    """

    bundle: str
    api_key_env: str | None = None
    batch_window_ms: float = 0.0
    max_body_mb: float = 10.0
    drift_window: int = 1000
    max_batch_rows: int = 256
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    max_connections: int = 200
    max_header_kb: float = 64.0

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, text: str) -> ServeConfig:
        return cls(**json.loads(text))


class _HTTPError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.detail, self.headers = status, detail, headers


def create_app(
    bundle: Bundle | str, config: ServeConfig | None = None, *, api_key: str | None = None
) -> FastAPI:
    """Build the app for a bundle (object or folder).

    Args:
        bundle: A loaded :class:`~dlpipe.Bundle` or its folder.
        config: Server options; defaults to :class:`ServeConfig` for the bundle.
        api_key: The key requests must send (``X-API-Key``, ``Authorization: Bearer`` or Basic auth
            with the key as password); when None, the variable named by ``config.api_key_env`` is
            read. Defaults to `None`.
    """
    import torch
    from fastapi.openapi.docs import (
        get_redoc_html,
        get_swagger_ui_html,
        get_swagger_ui_oauth2_redirect_html,
    )

    from dlpipe.bundle.bundle import Bundle, load_bundle
    from dlpipe.data.ranges import flag_rows, summarize_flags
    from dlpipe.evaluation.conformal import interval_columns
    from dlpipe.serving import docs as api_docs
    from dlpipe.serving.batching import MicroBatcher
    from dlpipe.serving.page import page_headers, render_page
    from dlpipe.serving.rows import RowEncoder

    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    cfg = config or ServeConfig(bundle=str(bundle) if not isinstance(bundle, Bundle) else "")
    if api_key is None and cfg.api_key_env:
        api_key = os.environ.get(cfg.api_key_env) or None
        if api_key is None:
            raise InvalidInputError(
                f"`api_key_env` names {cfg.api_key_env!r} but that environment variable is empty or unset; export it, or leave `api_key_env` unset to serve without a key."
            )
    # Each worker runs one forward pass at a time: more threads per worker only contend for the cores.
    torch.set_num_threads(1)
    encoder = RowEncoder(b.preprocessor) if b.kind == "table" else None
    reference = b.manifest.get("reference_statistics") or {}
    # GET /drift: typed values of the bundle's columns only (RowEncoder.typed), so its size is bounded
    # by window x columns whatever the requests carried.
    recent: deque[tuple[Any, ...]] = deque(maxlen=max(cfg.drift_window, 1))
    limit = int(cfg.max_body_mb * 1e6)

    model = b.model.eval()
    # Checked once: a NaN in the weights makes every output NaN, which is the bundle's fault (500), not the request's.
    weights_finite = all(
        bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point()
    )

    def run_model(
        inputs: list[np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        # the model stays in eval mode for the worker's life: no per-request mode switching
        with torch.inference_mode():
            logits = model(*(torch.from_numpy(a) for a in inputs))
        out = logits.float().numpy()
        if np.isfinite(out).all():
            return (*b.task.decode(out), None)
        # Rows whose output is not a number are reported to their own request (a micro-batch mixes requests).
        bad = ~np.isfinite(out.reshape(len(out), -1)).all(axis=1)
        labels, proba = b.task.decode(
            np.where(bad.reshape(-1, *[1] * (out.ndim - 1)), 0.0, out).astype(out.dtype)
        )
        return labels, proba, bad

    batcher = (
        MicroBatcher(run_model, cfg.batch_window_ms / 1000.0, cfg.max_batch_rows)
        if cfg.batch_window_ms > 0
        else None
    )
    classes = [_plain(c) for c in b.classes] if b.classes is not None else None
    intervals = b.manifest.get("intervals") if b.task.kind == "regression" else None

    def rows_json(
        labels: np.ndarray, proba: np.ndarray | None, bad: np.ndarray | None
    ) -> list[dict[str, Any]]:
        if bad is not None and bad.any():
            raise _nonfinite_output(int(np.flatnonzero(bad)[0]), weights_finite)
        values = labels.tolist()
        if proba is None and intervals:  # regression: split-conformal intervals (issue #20)
            bands = interval_columns(labels, intervals)
            pcts = [k[len("lower_") :] for k in bands if k.startswith("lower_")]
            return [
                {
                    "prediction": v,
                    "intervals": {
                        p: [float(bands[f"lower_{p}"][i]), float(bands[f"upper_{p}"][i])]
                        for p in pcts
                    },
                }
                for i, v in enumerate(values)
            ]
        if proba is None or classes is None:
            return [{"prediction": v} for v in values]
        p = proba.tolist()
        return [
            {"prediction": v, "probabilities": dict(zip(classes, ps))} for v, ps in zip(values, p)
        ]

    api_docs.check_assets()
    example = _example_answer(b, encoder, reference, run_model, rows_json, classes)

    app = FastAPI(
        title=f"dlpipe · {b.task.kind} · {b.task.target}",
        version=str(b.manifest.get("versions", {}).get("dlpipe", "")),
        description=_describe(b),
        docs_url=None,  # served below with the title escaped (FastAPI puts it into <title> as it is)
        redoc_url=None,
    )
    app.state.bundle = b
    app.state.config = cfg
    app.state.batcher = batcher
    page_title = html.escape(app.title, quote=True)

    # ------------------------------------------------------------------ middleware
    app.add_middleware(_Guard, api_key=api_key, limit=limit)

    @app.exception_handler(_HTTPError)
    async def _http_error(request: Request, exc: _HTTPError) -> Any:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(DlpipeError)
    async def _dlpipe_error(request: Request, exc: DlpipeError) -> Any:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    async def read_body(request: Request) -> bytes:
        body = bytearray()
        async for chunk in request.stream():  # _Guard counts the bytes and stops at the limit
            body += chunk
        return bytes(body)

    # ------------------------------------------------------------------ endpoints
    @app.get(
        "/health",
        summary="Liveness: the model is loaded and answering",
        responses=api_docs.simple_response(
            "The server is up (with an API key, only the status)",
            {"status": "ok", "kind": b.kind, "task": b.task.kind, "target": b.task.target},
        ),
    )
    async def health() -> dict[str, Any]:
        if api_key is not None:  # open to anyone: it says nothing about the model
            return {"status": "ok"}
        return {"status": "ok", "kind": b.kind, "task": b.task.kind, "target": b.task.target}

    @app.get(
        "/metadata",
        summary="Task, input schema, labels, metrics, versions",
        responses=api_docs.simple_response(
            "What the model takes and returns, and how it scored",
            _finite(_metadata(b, cfg, encoder)),
        ),
    )
    async def metadata() -> Response:
        return _json_response(_finite(_metadata(b, cfg, encoder)))

    @app.post(
        "/predict",
        summary="Predict for JSON rows (tables), base64 images or arrays; multipart image upload",
        openapi_extra={"requestBody": _request_schema(b, encoder, reference)},
        responses=api_docs.predict_responses(b.task.kind, classes, example, _too_large_text(limit)),
    )
    async def predict(request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            return await _predict_upload(request)
        if ctype not in ("application/json", ""):
            raise _HTTPError(
                415,
                f'content type {ctype[:60]!r} is not accepted here; send JSON (`application/json`) like {{"rows": [...]}}'
                + (", or images as multipart/form-data." if b.kind == "image" else "."),
            )
        payload = _parse_json(await read_body(request))
        if not isinstance(payload, dict):
            raise _HTTPError(
                422,
                "the request body must be a JSON object with a `rows` list"
                + (" (or `images`)." if b.kind == "image" else "."),
            )
        if encoder is not None:
            rows = encoder.validate(payload.get("rows"))
            notes: list[str] = []  # e.g. categories never seen in training, encoded as unknown
            parsed: dict[str, Any] = {}  # the numbers and category codes `encode` read
            inputs = encoder.encode(rows, notes, parsed)
            # values far outside training and empty rows: one sentence per row (data/ranges.py);
            # plain numeric columns as the arrays `encode` parsed
            flags = flag_rows(
                {
                    n: parsed[n]
                    if encoder.kinds[n] == "numeric" and n in parsed
                    else [r.get(n) for r in rows]
                    for n in encoder.names
                },
                reference,
                len(rows),
            )
            notes.extend(summarize_flags(flags))
            if batcher is not None and len(rows) == 1:
                labels, proba, bad = await batcher.submit(inputs)
            else:
                labels, proba, bad = run_model(inputs)
            answer: dict[str, Any] = {"predictions": rows_json(labels, proba, bad)}
            if notes:
                answer["warnings"] = notes
            body = _json_bytes(answer)
            recent.extend(encoder.typed(rows, parsed)[-recent.maxlen :] if recent.maxlen else [])
            return Response(body, media_type="application/json")
        return _generic(payload)

    def _generic(payload: dict[str, Any]) -> Response:
        if "images" in payload:
            images = payload["images"]
            if not isinstance(images, list) or not images:
                raise InvalidInputError(
                    "`images` must be a non-empty list of base64-encoded image files."
                )
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
                data = _float32(data, "`inputs`")
            except _Ragged:  # sequences of different lengths: one array per case
                data = [
                    _float32(x, f"case {i} of `inputs`", ragged=False) for i, x in enumerate(data)
                ]
        else:
            raise InvalidInputError(
                f"the request body needs `rows`, `images` or `inputs`; this {b.kind} model takes {_input_hint(b)}."
            )
        return _frame_json(_quiet_predict(b, data, weights_finite), weights_finite)

    async def _predict_upload(request: Request) -> Response:
        if b.kind != "image":
            raise _HTTPError(
                415,
                f'this {b.kind} model takes JSON (`application/json`) like {{"rows": [...]}}; for a CSV file use POST /predict/csv.',
            )
        async with request.form() as form:  # closes the spooled upload files
            files = [v for _, v in form.multi_items() if hasattr(v, "read")]
            if not files:
                raise InvalidInputError(
                    "the multipart upload holds no file; attach one or more image files."
                )
            images = [
                _decode_image(await f.read(), f"file {getattr(f, 'filename', i)!r}")
                for i, f in enumerate(files)
            ]
        return _frame_json(_quiet_predict(b, images, weights_finite), weights_finite)

    @app.post(
        "/predict/csv",
        summary="Upload a CSV (multipart field `file`, or a text/csv body); get predictions back as CSV",
        response_class=Response,
        responses=api_docs.csv_responses(
            *_csv_example(b, encoder, reference, example), _too_large_text(limit)
        ),
        openapi_extra={
            "requestBody": {
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}},
                            "required": ["file"],
                        }
                    },
                    "text/csv": {"schema": {"type": "string"}},
                }
            }
        },
    )
    async def predict_csv(request: Request) -> Response:
        import pandas as pd

        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            async with request.form() as form:  # closes the spooled upload files
                files = [v for _, v in form.multi_items() if hasattr(v, "read")]
                if not files:
                    raise InvalidInputError(
                        "the multipart upload holds no file; attach the CSV as the field `file`."
                    )
                raw = await files[0].read()
        elif ctype in ("text/csv", "text/plain", "application/csv"):
            raw = await read_body(request)
        else:
            raise _HTTPError(
                415,
                f"content type {(ctype or 'none')[:60]!r} is not accepted here; upload the CSV as multipart/form-data (field `file`) or send it with `content-type: text/csv`.",
            )
        try:
            frame = pd.read_csv(io.BytesIO(raw))
        except (ValueError, UnicodeDecodeError, OverflowError, pd.errors.ParserError) as exc:
            raise InvalidInputError(
                f"the upload could not be read as CSV ({str(exc).splitlines()[0][:200]}); send a comma-separated file with a header row."
            ) from None
        notes: list[str] = []
        preds = _quiet_predict(b, frame, weights_finite, notes)
        _check_frame(preds, weights_finite)
        out = (
            pd.concat([frame.reset_index(drop=True), preds.reset_index(drop=True)], axis=1)
            if len(preds) == len(frame)
            else preds
        )
        text = out.to_csv(index=False)
        if encoder is not None:
            known = [c for c in encoder.names if c in frame.columns]
            recent.extend(encoder.typed(frame[known].tail(cfg.drift_window).to_dict("records")))
        return Response(text, media_type="text/csv", headers=_warnings_header(notes))

    @app.get(
        "/drift",
        summary="Drift of the recent inputs against the training inputs (KS, chi-square, PSI)",
    )
    async def drift(request: Request) -> Response:
        import pandas as pd

        from dlpipe.monitoring import detect_drift

        if b.kind != "table" or encoder is None:
            raise _HTTPError(404, f"drift checks cover table bundles; this is a {b.kind} bundle.")
        text = request.query_params.get("level", "0.05")
        try:
            level = float(text)
        except ValueError:
            raise _HTTPError(
                422, f"`level` is {text[:40]!r} but must be a number between 0 and 1, e.g. 0.05."
            ) from None
        if not recent:
            return _json_response(
                {
                    "rows": 0,
                    "window": cfg.drift_window,
                    "drifted": [],
                    "features": [],
                    "note": "no rows predicted yet; the check compares the most recent predicted rows with the training inputs.",
                }
            )
        report = detect_drift(
            b, pd.DataFrame.from_records(list(recent), columns=encoder.names), level=level
        )
        return _json_response(_finite({"window": cfg.drift_window, **report.to_dict()}))

    page_html = render_page(b, encoder, reference)  # the same for every request

    @app.get("/", response_class=HTMLResponse, summary="A form built from the input schema")
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html, headers=page_headers())

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        urls = api_docs.asset_urls(root)
        return get_swagger_ui_html(
            openapi_url=root + "/openapi.json",
            title=f"{page_title} - Swagger UI",
            oauth2_redirect_url=root + "/docs/oauth2-redirect",
            swagger_js_url=urls["swagger_js_url"],
            swagger_css_url=urls["swagger_css_url"],
            swagger_favicon_url=urls["swagger_favicon_url"],
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def docs_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        urls = api_docs.asset_urls(root)
        answer = get_redoc_html(
            openapi_url=root + "/openapi.json",
            title=f"{page_title} - ReDoc",
            redoc_js_url=urls["redoc_js_url"],
            redoc_favicon_url=urls["redoc_favicon_url"],
            with_google_fonts=False,
        )
        # ReDoc's own logo comes from its CDN (it drops the image when that fails): not fetched at all
        answer.headers["Content-Security-Policy"] = "img-src 'self' data: blob:"
        return answer

    @app.get(ASSET_PREFIX + "{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        found = api_docs.asset(name)
        if found is None:
            raise _HTTPError(404, f"there is no docs asset named {name[:60]!r}.")
        return Response(
            found[0], media_type=found[1], headers={"Cache-Control": "public, max-age=86400"}
        )

    return app


# ---------------------------------------------------------------------- helpers
class _Guard:
    """Plain ASGI middleware (BaseHTTPMiddleware costs ~0.5 ms a request): API key, then body size.

    The body limit holds for every body however it is framed: a declared Content-Length over the
    limit is refused before reading, and the bytes of a chunked (or mislabelled) body are counted as
    they arrive, the request ending with 413 as soon as they pass the limit.
    """

    def __init__(self, app: Any, api_key: str | None, limit: int) -> None:
        self.app, self.key, self.limit = app, api_key.encode() if api_key else None, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self.key is not None and scope["path"] not in _OPEN_PATHS:
            sent = _sent_key(headers)
            if sent is None or not hmac.compare_digest(sent, self.key):
                challenge = (
                    b'Basic realm="dlpipe", charset="UTF-8"'
                    if scope["path"] in _BROWSER_PATHS or scope["path"].startswith(ASSET_PREFIX)
                    else b"Bearer"
                )
                await _send_json(
                    send,
                    401,
                    "this server needs an API key; send it in the `X-API-Key` header (or `Authorization: Bearer <key>`, or as the password of a browser's login prompt).",
                    [(b"www-authenticate", challenge)],
                )
                return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _send_json(send, 413, _too_large_text(self.limit))
            return
        limit, seen = self.limit, 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _HTTPError(413, _too_large_text(limit))
            return message

        try:
            await self.app(scope, counted, send)
        except ClientDisconnect:  # the client left (or was timed out) mid-body: nobody to answer
            return


async def _send_json(
    send: Any, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _sent_key(headers: dict[bytes, bytes]) -> bytes | None:
    """The key a request carries: ``X-API-Key``, ``Authorization: Bearer <key>`` or Basic auth (the password; any user name)."""
    key = headers.get(b"x-api-key")
    if key:
        return key
    auth = headers.get(b"authorization")
    if not auth:
        return None
    scheme, _, rest = auth.partition(b" ")
    scheme = scheme.lower()
    if scheme == b"bearer":
        return rest.strip() or None
    if scheme == b"basic":
        try:
            user, _, password = base64.b64decode(rest.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return None
        return password or user or None
    return None


class _Ragged(Exception):
    pass


def _float32(data: Any, what: str, *, ragged: bool = True) -> np.ndarray:
    """JSON numbers -> a float32 array, refusing what float32 cannot hold (1e308 would become inf).

    Raises ``_Ragged`` (when ``ragged``) for lists of unequal lengths, else one sentence.
    """
    try:
        array = np.asarray(data, dtype=np.float64)
    except ValueError as exc:
        if ragged and ("inhomogeneous" in str(exc) or "sequence" in str(exc)):
            raise _Ragged from None
        raise InvalidInputError(
            f"{what} holds something that is not a number; send nested lists of numbers."
        ) from None
    except (TypeError, OverflowError):
        raise InvalidInputError(
            f"{what} holds something that is not a number (or a number too large for a float); send nested lists of numbers."
        ) from None
    fits = np.abs(array) <= _F32_MAX
    if not fits.all():
        where = tuple(int(k) for k in np.argwhere(~fits)[0])
        raise InvalidInputError(
            f"{what} holds {float(array[where])!r} at position {list(where)}, which is not a finite number a model's float32 inputs can hold; send finite numbers of a plausible size."
        )
    return array.astype(np.float32)


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:  # json's C parser recurses once per nesting level
        raise _HTTPError(
            400,
            'the request body nests arrays or objects too deeply to be parsed; send rows as a flat list of objects such as {"rows": [...]}.',
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        if "integer string conversion" in str(
            exc
        ):  # Python refuses to parse integers of over 4300 digits
            raise _HTTPError(
                400,
                "the request body holds an integer of over 4300 digits, which is no usable number; send numbers of a plausible size.",
            ) from None
        raise _HTTPError(
            400,
            f'the request body is not valid JSON ({str(exc)[:120]}); send an object such as {{"rows": [...]}}.',
        ) from None


def _nonfinite_output(row: int, weights_finite: bool) -> _HTTPError | InvalidInputError:
    if not weights_finite:
        return _HTTPError(
            500,
            "the bundle's weights hold NaN or infinite values, so the model cannot give a prediction; retrain it or restore the bundle from a good copy.",
        )
    return InvalidInputError(
        f"the model's output for row {row} is not a finite number, so no prediction is given; that row's values are probably far outside the range seen in training, so check them."
    )


def _json_bytes(obj: Any) -> bytes:
    """Strict JSON (``NaN`` is not JSON): a non-finite number left in an answer is a 500 with a sentence, never sent."""
    try:
        return json.dumps(obj, allow_nan=False, default=str).encode()
    except ValueError:
        raise _HTTPError(
            500,
            "the answer held a number that is not finite (NaN or infinity), so it was not sent; check the bundle (its weights or metrics) and the request's values.",
        ) from None


def _json_response(obj: Any) -> Response:
    return Response(_json_bytes(obj), media_type="application/json")


def _finite(obj: Any) -> Any:
    """A copy of JSON-like data with NaN and infinities as null (metadata, drift statistics, examples)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.generic):
        return _finite(obj.item())
    return obj


def _check_frame(frame: Any, weights_finite: bool) -> None:
    """A predictions frame must hold no NaN where a prediction or probability should be."""
    numeric = frame.select_dtypes("number")
    if numeric.shape[1] and not np.isfinite(numeric.to_numpy(np.float64)).all():
        row = int(np.flatnonzero(~np.isfinite(numeric.to_numpy(np.float64)).all(axis=1))[0])
        raise _nonfinite_output(row, weights_finite)


def _quiet_predict(
    b: Bundle, data: Any, weights_finite: bool = True, notes: list[str] | None = None
) -> Any:
    """``b.predict`` with its data warnings kept out of the server's log; they go to ``notes`` if given."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            preds = b.predict(data)
        except NonFiniteOutputError:
            if weights_finite:
                raise  # the rows' fault: a 422 naming them
            raise _nonfinite_output(0, weights_finite) from None
    for w in caught:
        if issubclass(w.category, DataWarning):
            if notes is not None:
                notes.append(str(w.message))
        else:  # not ours to keep quiet
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return preds


def _warnings_header(notes: list[str]) -> dict[str, str] | None:
    """A CSV answer's warnings as one header: a JSON list, ASCII-escaped (header-safe whatever the
    category values hold) and cut to 4 kB."""
    if not notes:
        return None
    text = json.dumps(notes)
    if len(text) > 4096:
        text = json.dumps([n[:1000] for n in notes[:3]])
    return {"X-Dlpipe-Warnings": text}


def _frame_json(frame: Any, weights_finite: bool) -> Any:
    _check_frame(frame, weights_finite)
    rows = []
    proba_cols = [c for c in frame.columns if str(c).startswith("proba_")]
    other = [c for c in frame.columns if c not in proba_cols]
    for rec in frame.to_dict("records"):
        row = {str(k): _plain(rec[k]) for k in other}
        if proba_cols:
            row["probabilities"] = {str(c)[6:]: float(rec[c]) for c in proba_cols}
        rows.append(row)
    return _json_response({"predictions": rows})


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _too_large_text(limit: int) -> str:
    return f"the request body is over the limit of {limit / 1e6:g} MB; send fewer rows per request or start the server with a larger `--max-body-mb`."


def _b64(text: Any, i: int) -> bytes:
    if not isinstance(text, str):
        raise InvalidInputError(
            f"image {i} is a {type(text).__name__} but must be a base64 string of an image file."
        )
    if "," in text[:100] and text.startswith("data:"):
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(
            f"image {i} is not valid base64; encode the image file's bytes with base64."
        ) from None


def _decode_image(data: bytes, what: str) -> Any:
    """Bytes -> a loaded PIL image, or one clear 422 when they are not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InvalidInputError(
            f"{what} is not an image that could be read ({len(data)} bytes); send a PNG, JPEG, BMP or GIF file."
        ) from None
    return im


def _example_answer(
    b: Bundle, encoder: Any, reference: dict[str, Any], run_model: Any, rows_json: Any, classes: Any
) -> dict[str, Any] | None:
    """The docs' example of a 200 from POST /predict: for a table, the model's own answer for the
    request example's row; otherwise an answer of the right shape (first class, even probabilities)."""
    if encoder is not None:
        try:
            preds = rows_json(*run_model(encoder.encode([encoder.example_row(reference)])))
        except (DlpipeError, ValueError, _HTTPError):
            return None  # not worth refusing to start over (NaN weights: the 500s say so)
        return {"predictions": _finite(preds)}
    if classes:
        share = round(1.0 / len(classes), 4)
        return {
            "predictions": [
                {"prediction": classes[0], "probabilities": {str(c): share for c in classes}}
            ]
        }
    return None


def _csv_example(
    b: Bundle, encoder: Any, reference: dict[str, Any], example: dict[str, Any] | None
) -> tuple[list[str], str | None]:
    """Prediction columns a CSV answer adds, and (for a table) an example CSV answer of one row."""
    classes = [_plain(c) for c in b.classes] if b.classes is not None else None
    added = ["prediction", *(f"proba_{c}" for c in classes or [])]
    if encoder is None or not example:
        return added, None
    row = dict(encoder.example_row(reference))
    first = example["predictions"][0]
    row["prediction"] = first["prediction"]
    for c, p in (first.get("probabilities") or {}).items():
        row[f"proba_{c}"] = p
    header = ",".join(_csv_cell(k) for k in row)
    return added, header + "\n" + ",".join(_csv_cell(v) for v in row.values()) + "\n"


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return '"' + text.replace('"', '""') + '"' if any(ch in text for ch in ',"\n\r') else text


def _input_hint(b: Bundle) -> str:
    return {
        "image": "`images`: a list of base64-encoded image files (or a multipart upload)",
        "series": "`rows`: the most recent rows of the series, oldest first",
        "sequence": "`inputs`: a list of sequences, each a list of time steps",
    }.get(b.kind, "`inputs`: a list of arrays")


def _describe(b: Bundle) -> str:
    """The OpenAPI description: Markdown that the docs pages render (ReDoc lets HTML through), so the
    target's and metric's names go in as escaped text."""
    metrics = b.metrics.get("test", {})
    primary = metrics.get("primary_metric")
    score = metrics.get("model", {}).get(primary) if primary else None
    text = f"A dlpipe {_md(b.kind)} model predicting **{_md(b.task.target)}** ({_md(b.task.kind)})."
    if isinstance(score, (int, float)) and not isinstance(score, bool):
        text += f" Test {_md(primary)}: {score:.4f}."
    return text + " POST /predict with JSON; the page at / is a form built from the input schema."


def _md(value: Any) -> str:
    """Text for Markdown that may be rendered as HTML: entities for ``<>&"'``, backslashes before Markdown's punctuation."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~>])", r"\\\1", html.escape(str(value), quote=True))


def _metadata(b: Bundle, cfg: ServeConfig, encoder: Any) -> dict[str, Any]:
    schema: Any = None
    if encoder is not None:
        schema = [
            {
                "name": c["name"],
                "kind": c["kind"],
                **(
                    {"categories": encoder.categories[c["name"]]}
                    if c["name"] in encoder.categories
                    else {}
                ),
            }
            for c in encoder.columns
        ]
    return {
        "kind": b.kind,
        "task": b.task.kind,
        "target": b.task.target,
        "classes": [_plain(c) for c in b.classes] if b.classes is not None else None,
        "inputs": schema if schema is not None else b.input_columns,
        "metrics": b.metrics,
        "model": {
            "family": b.manifest.get("model_spec", {}).get("family"),
            "n_parameters": int(sum(p.numel() for p in b.model.parameters())),
        },
        "versions": b.manifest.get("versions", {}),
        "server": {
            "batch_window_ms": cfg.batch_window_ms,
            "max_body_mb": cfg.max_body_mb,
            "drift_window": cfg.drift_window,
        },
    }


def _request_schema(b: Bundle, encoder: Any, reference: dict[str, Any]) -> dict[str, Any]:
    if encoder is None:
        content: dict[str, Any] = {
            "application/json": {"schema": {"type": "object", "description": _input_hint(b)}}
        }
        if b.kind == "image":
            content["multipart/form-data"] = {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            }
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
            # the training categories as examples, not an enum: an unseen one is accepted (as unknown, with a warning)
            props[name] = {
                "type": ["string", "null"],
                "examples": encoder.categories.get(name, [])[:100],
                "description": "a category seen in training; any other value is treated as unknown",
            }
    row = {"type": "object", "properties": props, "required": encoder.names}
    schema = {
        "type": "object",
        "required": ["rows"],
        "properties": {"rows": {"type": "array", "minItems": 1, "items": row}},
    }
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": schema,
                "example": {"rows": [_finite(encoder.example_row(reference))]},
            }
        },
    }
