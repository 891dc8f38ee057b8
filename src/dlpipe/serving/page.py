"""The HTML page at ``/``: a form generated from the bundle's input schema, showing the prediction.

Tables get one field per column (a number box prefilled with the training median, a list of the
training categories, true/false for booleans); image models get a file upload. The script posts to
``/predict`` and draws the class probabilities as bars. Everything is inline: no external assets.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlpipe.bundle.bundle import Bundle

__all__ = ["render_page"]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:760px;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem} .meta{color:#666;font-size:.9rem}
form{display:grid;grid-template-columns:max-content 1fr;gap:.4rem .8rem;align-items:center;margin:1rem 0}
label{font-weight:600} input,select{padding:.3rem;font-size:1rem}
button{grid-column:1/3;padding:.5rem;font-size:1rem;cursor:pointer}
#result{margin-top:1rem;padding:1rem;border:1px solid #ddd;border-radius:6px;min-height:2rem}
.bar{display:flex;align-items:center;gap:.5rem;margin:.2rem 0} .bar span.fill{background:#4a7bd0;height:.9rem;display:inline-block}
.error{color:#b00020}
"""

_SCRIPT = """
const FIELDS = %(fields)s;
const KIND = %(kind)s;
function keyHeaders(h) { const k = document.getElementById('api-key'); if (k && k.value) h['X-API-Key'] = k.value; return h; }
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
      const name = document.createElement('span'); name.textContent = label + ' ' + (100 * prob).toFixed(1) + '%%';
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
      if (!f) { out.innerHTML = '<span class="error">choose an image file first.</span>'; return; }
      fd.append('file', f);
      resp = await fetch('predict', {method: 'POST', body: fd, headers: keyHeaders({})});
    } else {
      const row = {};
      for (const f of FIELDS) {
        const el = document.getElementById('field-' + f.name); let v = el.value;
        if (v === '') v = null;
        else if (f.kind === 'numeric') v = Number(v);
        else if (f.kind === 'boolean') v = (v === 'true');
        row[f.name] = v;
      }
      resp = await fetch('predict', {method: 'POST', body: JSON.stringify({rows: [row]}), headers: keyHeaders({'Content-Type': 'application/json'})});
    }
    const data = await resp.json();
    if (!resp.ok) { out.innerHTML = ''; const e = document.createElement('span'); e.className = 'error'; e.id = 'error'; e.textContent = data.detail; out.appendChild(e); return; }
    show(data);
  } catch (err) { out.innerHTML = '<span class="error">the request failed: ' + err + '</span>'; }
}
document.getElementById('predict-form').addEventListener('submit', submitForm);
"""


def render_page(b: Bundle, encoder: Any, reference: dict[str, Any], *, needs_key: bool = False) -> str:
    """The page's HTML for bundle ``b`` (``encoder``: the table row encoder, or None for other kinds)."""
    esc = html.escape
    fields: list[dict[str, str]] = []
    parts: list[str] = []
    if encoder is not None:
        example = encoder.example_row(reference)
        for c in encoder.columns:
            name, kind = c["name"], c["kind"]
            fid = f"field-{esc(name)}"
            fields.append({"name": name, "kind": kind})
            parts.append(f'<label for="{fid}">{esc(name)}</label>')
            if kind == "numeric":
                parts.append(f'<input type="number" step="any" id="{fid}" name="{esc(name)}" value="{esc(str(example[name]))}">')
            elif kind == "boolean":
                parts.append(f'<select id="{fid}" name="{esc(name)}"><option>true</option><option>false</option><option value="">(unknown)</option></select>')
            elif kind == "datetime":
                parts.append(f'<input type="text" id="{fid}" name="{esc(name)}" value="{esc(str(example[name]))}" placeholder="YYYY-MM-DD">')
            else:
                options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in encoder.categories.get(name, []))
                parts.append(f'<select id="{fid}" name="{esc(name)}">{options}<option value="">(unknown)</option></select>')
    elif b.kind == "image":
        parts.append('<label for="field-image">image</label><input type="file" accept="image/*" id="field-image" name="file">')
    else:
        parts.append(f'<p style="grid-column:1/3">This {esc(b.kind)} model takes arrays: POST them to <code>/predict</code> (see <a href="docs">the API docs</a>).</p>')
    if needs_key:
        parts.append('<label for="api-key">API key</label><input type="password" id="api-key" autocomplete="off">')
    metrics = b.metrics.get("test", {})
    primary = metrics.get("primary_metric")
    score = metrics.get("model", {}).get(primary) if primary else None
    meta = f"{esc(b.task.kind)} model of <code>{esc(str(b.task.target))}</code>"
    if score is not None:
        meta += f" · test {esc(str(primary))} {score:.4f}"
    script = _SCRIPT % {"fields": json.dumps(fields), "kind": json.dumps(b.kind)}
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>dlpipe · {esc(str(b.task.target))}</title><style>{_STYLE}</style></head>
<body>
<h1>Predict {esc(str(b.task.target))}</h1>
<p class="meta">{meta} · <a href="docs">API docs</a> · <a href="metadata">metadata</a></p>
<form id="predict-form">
{''.join(parts)}
<button type="submit" id="submit">Predict</button>
</form>
<div id="result" aria-live="polite"></div>
<script>{script}</script>
</body></html>
"""
