"""The self-contained ``report.html``: tables, plots inlined as base64 PNG, the claims, and a trace viewer.

Nothing is fetched from a network (no CDN): the page is one file that opens from disk. Model text is never
inserted as HTML: traces are cut into segments here (attempt, reflection with its verdict, answer, plain text),
embedded as JSON (with ``<``, ``>`` and ``&`` escaped so no text can close the script element), and the viewer's small
vanilla-JS renderer puts them on the page with ``textContent``.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from typing import Any

from skillfactory.prompting import parse_verdict
from skillfactory.report.load import EvalRun
from skillfactory.report.tables import Table

_SEG = re.compile(r"<(sample|reflect|answer)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)


def segment(text: str, attempt_results: list[bool] | None = None) -> list[dict[str, Any]]:
    """Cut a trace into segments: ``{"k": "text"|"sample"|"reflect"|"answer", "t": ..., ...}``.

    Attempts carry ``ok`` (the verifier's verdict on that attempt, when known); reflections carry ``v``
    (True = Correct, False = Incorrect, None = no single parseable verdict).
    """
    segs: list[dict[str, Any]] = []
    pos, attempt = 0, 0
    for m in _SEG.finditer(text):
        if m.start() > pos:
            segs.append({"k": "text", "t": text[pos:m.start()].strip("\n")})
        kind, body = m.group(1).lower(), m.group(2)
        seg: dict[str, Any] = {"k": kind, "t": body.strip("\n")}
        if kind == "sample":
            seg["ok"] = attempt_results[attempt] if attempt_results and attempt < len(attempt_results) else None
            seg["n"] = attempt + 1
            attempt += 1
        elif kind == "reflect":
            seg["v"] = parse_verdict(body)
        segs.append(seg)
        pos = m.end()
    if pos < len(text):
        segs.append({"k": "text", "t": text[pos:].strip("\n")})
    return [s for s in segs if s["k"] != "text" or s["t"].strip()]


def pick_traces(evals: list[EvalRun], per_cell: int = 4, max_chars: int = 20_000) -> list[dict[str, Any]]:
    """A few traces per (model, entry, mode, budget): the first correct and incorrect ones by question id, so the
    viewer shows both outcomes and the choice is the same for the same inputs."""
    out = []
    for r in evals:
        cells: dict[tuple, list[dict]] = {}
        for s in r.samples:
            cells.setdefault((s["entry"], s.get("mode", "plain"), s.get("budget")), []).append(s)
        for key in sorted(cells, key=lambda k: (k[0], k[1], -1 if k[2] is None else k[2])):
            ss = sorted(cells[key], key=lambda s: (s["question_id"], s["index"]))
            k = per_cell if key[1] == "plain" else max(1, per_cell // 2)  # fewer per budget-forcing cell
            right = [s for s in ss if s["correct"]][: (k + 1) // 2]
            wrong = [s for s in ss if not s["correct"]][: k - len(right)]
            if len(right) + len(wrong) < k:
                right = [s for s in ss if s["correct"]][: k - len(wrong)]
            for s in sorted(right + wrong, key=lambda s: (s["question_id"], s["index"])):
                text = s["text"] if len(s["text"]) <= max_chars else s["text"][:max_chars] + "\n[... cut for the report]"
                mode = s.get("mode", "plain")
                out.append({
                    "model": r.label, "entry": s["entry"], "task": s["task"], "qid": s["question_id"],
                    "i": s["index"], "mode": mode if mode == "plain" else f"{mode} budget {s.get('budget')}",
                    "prompt": s["prompt"], "gold": s["gold"], "extracted": s["extracted"], "correct": s["correct"],
                    "why": s["why"], "tokens": s["n_tokens"],
                    "segs": segment(text, s.get("skills", {}).get("attempt_results")),
                })
    return out


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<figure><img alt='{html.escape(path.stem)}' src='data:image/png;base64,{data}'></figure>"


def _safe_json(obj: Any) -> str:
    # every <, > and & as a JSON escape: no model text can close the script, open a comment or start a tag
    text = json.dumps(obj, ensure_ascii=True, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:16px 24px;
color:#222;background:#fff}
h1{margin:8px 0 4px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}h3{margin:18px 0 6px}
nav a{margin-right:14px}table{border-collapse:collapse;font-size:13px;margin:6px 0 12px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;white-space:nowrap}th{background:#f3f5f8;white-space:normal;vertical-align:bottom}
.scroll{overflow-x:auto;max-width:100%}
tbody tr:nth-child(even){background:#fafbfc}.note{color:#555;font-size:13px;margin:2px 0}
figure{margin:8px 0}figure img{max-width:100%;border:1px solid #eee}
.claim{border-left:5px solid #999;padding:6px 10px;margin:8px 0;background:#fafafa}
.claim.held{border-color:#2e7d32}.claim.failed{border-color:#c62828}.claim.direction{border-color:#f9a825}
.status{font-weight:600}.controls{position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #eee;z-index:1}
.controls select{margin-right:12px}.trace{border:1px solid #ddd;border-radius:6px;margin:10px 0;padding:8px 10px}
.trace.ok{border-left:6px solid #2e7d32}.trace.bad{border-left:6px solid #c62828}
.head{font-size:13px;color:#333;margin-bottom:4px}.mark{font-weight:700;margin-right:6px}
.mark.ok{color:#2e7d32}.mark.bad{color:#c62828}
.seg{white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;margin:4px 0;
padding:4px 6px;border-radius:4px}
.seg.text{color:#555}.seg.sample{background:#e8f0fe;border:1px solid #9ab6e8}
.seg.reflect{background:#fff6e0;border:1px solid #e8c66a}.seg.answer{background:#eef7ee;border:1px solid #7cb87c}
.tag{font-family:system-ui,sans-serif;font-size:11px;font-weight:600;margin-right:6px;padding:1px 5px;border-radius:3px;
background:#fff;border:1px solid #bbb}.v-true{background:#2e7d32;color:#fff;border-color:#2e7d32}
.v-false{background:#c62828;color:#fff;border-color:#c62828}.v-null{background:#777;color:#fff}
details{margin:3px 0}summary{cursor:pointer;color:#444;font-size:13px}
"""

JS = r"""
(function(){
  var data = JSON.parse(document.getElementById('trace-data').textContent);
  var fm = document.getElementById('f-model'), ft = document.getElementById('f-entry'),
      fo = document.getElementById('f-outcome'), fx = document.getElementById('f-mode'),
      list = document.getElementById('traces'), count = document.getElementById('count');
  function fill(sel, values){ values.forEach(function(v){ var o=document.createElement('option'); o.value=v;
    o.textContent=v; sel.appendChild(o); }); }
  function uniq(key){ var s={}, out=[]; data.forEach(function(d){ if(!s[d[key]]){ s[d[key]]=1; out.push(d[key]); } });
    return out; }
  var models = uniq('model'); fill(fm, models); fill(ft, uniq('entry')); fill(fx, uniq('mode'));
  // open on the last model (arms are ordered base, sft_only, rl_only, skillfactory) and its plain samples
  if (models.length > 1) fm.value = models[models.length - 1];
  if (uniq('mode').indexOf('plain') >= 0) fx.value = 'plain';
  function el(tag, cls, text){ var e=document.createElement(tag); if(cls) e.className=cls;
    if(text!==undefined) e.textContent=text; return e; }
  function render(){
    list.innerHTML=''; var shown=0;
    data.forEach(function(d){
      if(fm.value && d.model!==fm.value) return; if(ft.value && d.entry!==ft.value) return;
      if(fx.value && d.mode!==fx.value) return;
      if(fo.value==='correct' && !d.correct) return; if(fo.value==='incorrect' && d.correct) return;
      shown++;
      var card=el('div','trace '+(d.correct?'ok':'bad')), head=el('div','head');
      head.appendChild(el('span','mark '+(d.correct?'ok':'bad'), d.correct?'\u2713 correct':'\u2717 '+d.why));
      head.appendChild(el('span','', d.model+' \u00b7 '+d.entry+' \u00b7 '+d.mode+' \u00b7 '+d.qid+' #'+d.i+
        ' \u00b7 '+d.tokens+' tokens \u00b7 extracted: '+(d.extracted===null?'(none)':d.extracted)+' \u00b7 gold: '+d.gold));
      card.appendChild(head);
      var det=el('details'); det.appendChild(el('summary','', 'prompt')); det.appendChild(el('div','seg text', d.prompt));
      card.appendChild(det);
      d.segs.forEach(function(s){
        var box=el('div','seg '+s.k);
        if(s.k==='sample'){ var t=el('span','tag '+(s.ok===true?'v-true':s.ok===false?'v-false':'v-null'),
            'attempt '+s.n+(s.ok===true?' \u2713':s.ok===false?' \u2717':'')); box.appendChild(t); }
        if(s.k==='reflect'){ box.appendChild(el('span','tag v-'+String(s.v),
            s.v===true?'verdict: Correct':s.v===false?'verdict: Incorrect':'no verdict')); }
        if(s.k==='answer'){ box.appendChild(el('span','tag','answer')); }
        box.appendChild(document.createTextNode(s.t)); card.appendChild(box);
      });
      list.appendChild(card);
    });
    count.textContent = shown+' of '+data.length+' traces';
  }
  [fm,ft,fo,fx].forEach(function(s){ s.addEventListener('change', render); });
  render();
})();
"""


def render_html(title: str, intro: list[str], claims: list[dict[str, Any]], tables: list[Table],
                plots: list[Path], traces: list[dict[str, Any]]) -> str:
    esc = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head><body>",
             f"<h1>{esc(title)}</h1>", "<nav><a href='#claims'>Claims</a><a href='#tables'>Tables</a>"
             "<a href='#plots'>Plots</a><a href='#viewer'>Trace viewer</a></nav>"]
    parts += [f"<p class='note'>{esc(x)}</p>" for x in intro]
    parts.append("<h2 id='claims'>Claims</h2>")
    for c in claims:
        cls = {"held": "held", "did not hold": "failed", "direction only": "direction"}.get(c["status"], "")
        parts.append(f"<div class='claim {cls}'><div><span class='status'>Claim {c['claim']}: {esc(c['status'])}</span>"
                     f" &mdash; {esc(c['title'])}</div><div class='note'>{esc(c['measured'])}</div></div>")
    parts.append("<h2 id='tables'>Tables</h2>")
    parts += [t.html() for t in tables]
    parts.append("<h2 id='plots'>Plots</h2>")
    parts += [_img(p) for p in plots]
    parts.append("<h2 id='viewer'>Trace viewer</h2><p class='note'>Attempts (&lt;sample&gt;) in blue, marked by the "
                 "verifier; reflections in yellow with their verdict (green Correct, red Incorrect); answers in green. "
                 "A few traces per model and suite entry, both outcomes when available.</p>")
    parts.append("<div class='controls'>model <select id='f-model'><option value=''>all</option></select>"
                 "entry <select id='f-entry'><option value=''>all</option></select>"
                 "mode <select id='f-mode'><option value=''>all</option></select>"
                 "outcome <select id='f-outcome'><option value=''>all</option><option value='correct'>correct</option>"
                 "<option value='incorrect'>incorrect</option></select><span id='count' class='note'></span></div>")
    parts.append("<div id='traces'></div>")
    parts.append(f"<script type='application/json' id='trace-data'>{_safe_json(traces)}</script>")
    parts.append(f"<script>{JS}</script></body></html>\n")
    return "\n".join(parts)


__all__ = ["pick_traces", "render_html", "segment"]
