"""The HTML page at ``/``: a form generated from the bundle's input schema, showing the prediction.

Tables get one field per column (a number box prefilled with the training median, a list of the
training categories, true/false for booleans); image models get a file upload, text models a textarea. The script posts to
``/predict`` and draws the class probabilities as bars. Everything is inline: no external assets.

Names, categories and values come from the training data, so they are never spliced into code: the
HTML holds them escaped (text and quoted attributes), the script reads them from a
``<script type="application/json">`` block (``<``, ``>``, ``&`` as ``\u003c``... so it cannot close
the block) with ``JSON.parse`` and writes them with ``textContent``. The script itself is constant, and
the response's Content-Security-Policy allows that script alone (by its hash), so even a slip in
escaping could not run anything.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlpipe.bundle.bundle import Bundle

__all__ = ["render_page", "page_headers"]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:760px;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem} .meta{color:#666;font-size:.9rem}
form{display:grid;grid-template-columns:max-content 1fr;gap:.4rem .8rem;align-items:center;margin:1rem 0}
label{font-weight:600} input,select,textarea{padding:.3rem;font-size:1rem}
button{grid-column:1/3;padding:.5rem;font-size:1rem;cursor:pointer}
#result{margin-top:1rem;padding:1rem;border:1px solid #ddd;border-radius:6px;min-height:2rem}
.bar{display:flex;align-items:center;gap:.5rem;margin:.2rem 0} .bar span.fill{background:#4a7bd0;height:.9rem;display:inline-block}
.error{color:#b00020}
"""

_SCRIPT = """
const DATA = JSON.parse(document.getElementById('page-data').textContent);
const FIELDS = DATA.fields;
const KIND = DATA.kind;
function show(data) {
  const out = document.getElementById('result');
  out.innerHTML = '';
  const p = data.predictions[0];
  const head = document.createElement('div');
  head.id = 'prediction';
  head.innerHTML = '<strong>prediction:</strong> <span id="prediction-value"></span>';
  head.querySelector('span').textContent = String(p.prediction);
  out.appendChild(head);
  if (p.probabilities) {
    for (const [label, prob] of Object.entries(p.probabilities)) {
      const row = document.createElement('div'); row.className = 'bar';
      const name = document.createElement('span'); name.textContent = label + ' ' + (100 * prob).toFixed(1) + '%';
      const fill = document.createElement('span'); fill.className = 'fill'; fill.style.width = (240 * prob) + 'px';
      row.appendChild(fill); row.appendChild(name); out.appendChild(row);
    }
  }
}
async function submitForm(ev) {
  ev.preventDefault();
  const out = document.getElementById('result');
  out.textContent = 'predicting...';
  let resp;
  try {
    if (KIND === 'image') {
      const fd = new FormData(); const f = document.getElementById('field-image').files[0];
      if (!f) { showError('choose an image file first.'); return; }
      fd.append('file', f);
      resp = await fetch('predict', {method: 'POST', body: fd});
    } else {
      const row = {};
      for (const f of FIELDS) {
        const el = document.getElementById('field-' + f.name); let v = el.value;
        if (v === '') v = null;
        else if (f.kind === 'numeric') v = Number(v);
        else if (f.kind === 'boolean') v = (v === 'true');
        row[f.name] = v;
      }
      resp = await fetch('predict', {method: 'POST', body: JSON.stringify({rows: [row]}), headers: {'Content-Type': 'application/json'}});
    }
    const data = await resp.json();
    if (!resp.ok) { showError(String(data.detail)); return; }
    show(data);
  } catch (err) { showError('the request failed: ' + err); }
}
function showError(text) {
  const out = document.getElementById('result');
  out.innerHTML = ''; const e = document.createElement('span'); e.className = 'error'; e.id = 'error'; e.textContent = text; out.appendChild(e);
}
document.getElementById('predict-form').addEventListener('submit', submitForm);
"""


# The script never changes (the data travels beside it), so the policy can name it by hash.
_CSP = (
    "default-src 'none'; script-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    + "'; "
    "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def page_headers() -> dict[str, str]:
    """Response headers of the page: the Content-Security-Policy that lets only its own script run."""
    return {
        "content-security-policy": _CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
    }


def _json_data(obj: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: nothing in it can end the block or open a comment."""
    return (
        json.dumps(obj, allow_nan=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def render_page(b: Bundle, encoder: Any, reference: dict[str, Any]) -> str:
    """The page's HTML for bundle ``b`` (``encoder``: the table row encoder, or None for other kinds)."""

    def esc(value: Any) -> str:  # text, and safe inside a double- or single-quoted attribute
        return html.escape(str(value), quote=True)

    fields: list[dict[str, str]] = []
    parts: list[str] = []
    if encoder is not None:
        example = encoder.example_row(reference)
        for c in encoder.columns:
            name, kind = c["name"], c["kind"]
            fid = f"field-{esc(name)}"
            fields.append({"name": str(name), "kind": str(kind)})
            parts.append(f'<label for="{fid}">{esc(name)}</label>')
            if kind == "numeric":
                parts.append(
                    f'<input type="number" step="any" id="{fid}" name="{esc(name)}" value="{esc(str(example[name]))}">'
                )
            elif kind == "boolean":
                parts.append(
                    f'<select id="{fid}" name="{esc(name)}"><option>true</option><option>false</option><option value="">(unknown)</option></select>'
                )
            elif kind == "datetime":
                parts.append(
                    f'<input type="text" id="{fid}" name="{esc(name)}" value="{esc(str(example[name]))}" placeholder="YYYY-MM-DD">'
                )
            else:
                options = "".join(
                    f'<option value="{esc(v)}">{esc(v)}</option>'
                    for v in encoder.categories.get(name, [])
                )
                parts.append(
                    f'<select id="{fid}" name="{esc(name)}">{options}<option value="">(unknown)</option></select>'
                )
    elif b.kind == "text":
        for name in getattr(
            b.preprocessor, "text_columns", b.input_columns
        ):  # textareas, sent as is
            fid = f"field-{esc(name)}"
            fields.append({"name": str(name), "kind": "text"})
            parts.append(
                f'<label for="{fid}">{esc(name)}</label><textarea id="{fid}" name="{esc(name)}" rows="8" placeholder="paste a document"></textarea>'
            )
        table = getattr(b.preprocessor, "table", None)  # columns read beside the text
        if table is not None:
            state = table.state()
            cats = {e["name"]: e["categories"] for e in (*state["onehot"], *state["embed"])}
            for c in table.schema.columns:
                name, kind, fid = c.name, c.kind, f"field-{esc(c.name)}"
                fields.append({"name": str(name), "kind": str(kind)})
                parts.append(f'<label for="{fid}">{esc(name)}</label>')
                if kind == "numeric":
                    parts.append(f'<input type="number" step="any" id="{fid}" name="{esc(name)}">')
                elif kind == "boolean":
                    parts.append(
                        f'<select id="{fid}" name="{esc(name)}"><option>true</option><option>false</option><option value="">(unknown)</option></select>'
                    )
                elif name in cats:
                    options = "".join(
                        f'<option value="{esc(v)}">{esc(v)}</option>' for v in cats[name]
                    )
                    parts.append(
                        f'<select id="{fid}" name="{esc(name)}">{options}<option value="">(unknown)</option></select>'
                    )
                else:  # dates
                    parts.append(f'<input type="text" id="{fid}" name="{esc(name)}">')
    elif b.kind == "image":
        parts.append(
            '<label for="field-image">image</label><input type="file" accept="image/*" id="field-image" name="file">'
        )
    else:
        parts.append(
            f'<p style="grid-column:1/3">This {esc(b.kind)} model takes arrays: POST them to <code>/predict</code> (see <a href="docs">the API docs</a>).</p>'
        )
    metrics = b.metrics.get("test", {})
    primary = metrics.get("primary_metric")
    score = metrics.get("model", {}).get(primary) if primary else None
    meta = f"{esc(b.task.kind)} model of <code>{esc(b.task.target)}</code>"
    if isinstance(score, (int, float)) and not isinstance(score, bool):
        meta += f" · test {esc(primary)} {score:.4f}"
    data = _json_data({"fields": fields, "kind": str(b.kind)})
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>dlpipe · {esc(b.task.target)}</title><style>{_STYLE}</style></head>
<body>
<h1>Predict {esc(b.task.target)}</h1>
<p class="meta">{meta} · <a href="docs">API docs</a> · <a href="metadata">metadata</a></p>
<form id="predict-form">
{"".join(parts)}
<button type="submit" id="submit">Predict</button>
</form>
<div id="result" aria-live="polite"></div>
<script type="application/json" id="page-data">{data}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
