"""One self-contained HTML file: data as embedded JSON, CSS and JavaScript inline, nothing fetched.

The page renders one document at a time (a 1,000-file folder stays light: only the open note
is in the DOM). Spans are bars under the text on stacked lanes, so nested and overlapping
spans never hide one another; relations are drawn as connectors between an entity and its
modifiers; negated, uncertain, conditional and other-subject entities have their own bar
pattern (hatched, dashed, dotted, double) and a text decoration, explained in the legend,
so they do not rely on colour.
"""

from __future__ import annotations

import html
import json

from kiwi_cas import __version__
from kiwi_cas.core import schema

#: Okabe-Ito-derived colours (distinguishable under the common colour-vision deficiencies)
ENTITY_COLOURS = {"problem": "#D55E00", "test": "#0072B2", "drug": "#009E73", "treatment": "#CC79A7"}
MODIFIER_COLOUR = "#6b6b6b"
MODIFIER_COLOURS = {"negation": "#000000", "uncertain": "#E69F00", "condition": "#E69F00", "subject": "#56B4E9",
                    "bodyloc": "#8c6d31", "severity": "#7b4173", "temporal": "#3182bd", "course": "#636363",
                    "labvalue": "#0072B2", "reference_range": "#6baed6", "strength": "#31a354",
                    "dosage": "#74c476", "duration": "#9e9ac8", "form": "#bcbd22", "frequency": "#17becf",
                    "route": "#8c564b"}

CSS = """
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222}
header{padding:8px 14px;border-bottom:1px solid #ccc;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header h1{font-size:16px;margin:0}#main{display:flex;min-height:calc(100vh - 48px)}
nav{width:260px;border-right:1px solid #ccc;overflow:auto;max-height:calc(100vh - 48px);flex:none}
nav input{width:100%;padding:6px;border:0;border-bottom:1px solid #ddd}nav ul{list-style:none;margin:0;padding:0}
nav li{padding:4px 10px;cursor:pointer;border-bottom:1px solid #f0f0f0;font-size:13px}nav li.on{background:#e8f0fe}
nav li small{color:#666;float:right}#pager{padding:6px;display:flex;gap:4px;align-items:center;font-size:12px}
section#content{flex:1;padding:12px 18px;overflow:auto;max-height:calc(100vh - 48px);position:relative}
#filters{display:flex;flex-wrap:wrap;gap:4px 12px;font-size:12px;margin-bottom:8px}
#filters label{white-space:nowrap;cursor:pointer}#filters b{font-weight:600;margin-left:8px}.sw{display:inline-block;width:12px;height:12px;vertical-align:-2px;border:1px solid #0003}
#doc{position:relative}#note{white-space:pre-wrap;font:15px/1 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;position:relative;z-index:1}
.seg{position:relative;display:inline;line-height:var(--lh,1.9)}
.seg .bar{position:absolute;left:0;right:0;height:3px;pointer-events:none}
.seg.hl{background:#fff3b0}.seg.sel{background:#ffe066}
.bar.e{height:4px}.bar.negated{background-image:repeating-linear-gradient(45deg,#fff 0 2px,transparent 2px 5px)!important}
.bar.uncertain{background-image:repeating-linear-gradient(90deg,transparent 0 4px,#fff 4px 6px)!important}
.bar.conditional{background-image:radial-gradient(#fff 40%,transparent 45%)!important;background-size:4px 4px!important}
.bar.other_subject{border-top:1px solid;border-bottom:1px solid;background-clip:padding-box}
.seg.t-negated{text-decoration:line-through;text-decoration-thickness:1px}
.seg.t-uncertain,.seg.t-conditional{font-style:italic}
.bar.fp{outline:1px solid #c00;outline-offset:1px}.bar.fn{background:repeating-linear-gradient(90deg,#999 0 3px,transparent 3px 6px)!important;opacity:.9}
.hidden{display:none!important}svg#arcs{position:absolute;left:0;top:0;pointer-events:none;z-index:0;overflow:visible}
svg#arcs path{fill:none;stroke:#555;stroke-width:1;opacity:.45}svg#arcs path.fp{stroke:#c00;stroke-dasharray:3 2;opacity:.8}
svg#arcs path.hl{stroke:#000;stroke-width:2;opacity:1}
#details{position:fixed;right:12px;bottom:12px;width:340px;max-height:45vh;overflow:auto;background:#fff;border:1px solid #999;
box-shadow:0 2px 8px #0003;padding:8px 10px;font-size:12px;z-index:5}#details h3{margin:4px 0;font-size:13px}
#details table{border-collapse:collapse;width:100%}#details td{border-top:1px solid #eee;padding:2px 4px;vertical-align:top}
table.sum{border-collapse:collapse;margin:8px 0 16px}table.sum td,table.sum th{border:1px solid #ccc;padding:3px 8px;text-align:right}
table.sum th:first-child,table.sum td:first-child{text-align:left}#legend{font-size:12px;margin:6px 0 10px;display:flex;flex-wrap:wrap;gap:4px 14px}
#legend i{display:inline-block;width:28px;height:6px;vertical-align:middle;background:#444;margin-right:4px}
.warn{color:#a00}button{font-size:12px}
@media print{nav,#filters,#details,header button{display:none!important}section#content{max-height:none;overflow:visible}#main{display:block}}
"""

JS = r"""
(function(){
'use strict';
const DATA = JSON.parse(document.getElementById('kiwi-data').textContent);
const COLOURS = DATA.colours, PAGE = 100;
const state = {doc: -1, hidden: new Set(), hiddenAsr: new Set(), filter: '', page: 0};
const $ = (s) => document.querySelector(s);
function el(tag, attrs, ...kids){const e=document.createElement(tag);for(const k in attrs||{}){if(k==='class')e.className=attrs[k];else if(k==='text')e.textContent=attrs[k];else e.setAttribute(k,attrs[k]);}for(const c of kids)e.append(c);return e;}

function docList(){
  const ul = $('#docs'); ul.textContent='';
  const q = state.filter.toLowerCase();
  const idx = DATA.docs.map((d,i)=>i).filter(i=>!q || DATA.docs[i].name.toLowerCase().includes(q));
  const pages = Math.max(1, Math.ceil(idx.length/PAGE)); state.page = Math.min(state.page, pages-1);
  const sum = el('li', {class: state.doc<0?'on':'', 'data-doc':'summary', text:'Corpus summary'}); sum.onclick=()=>show(-1); ul.append(sum);
  for (const i of idx.slice(state.page*PAGE, (state.page+1)*PAGE)){
    const d = DATA.docs[i];
    const li = el('li', {class: i===state.doc?'on':'', 'data-doc': String(i)}, d.name, el('small',{text:String(d.counts.entities)}));
    li.onclick=()=>show(i); ul.append(li);
  }
  $('#pageinfo').textContent = (state.page+1)+' / '+pages+' ('+idx.length+' notes)';
}

function lanes(spans){
  // greedy interval partitioning, entities on the lanes nearest the text, then modifiers
  const order = spans.slice().sort((a,b)=>(a.kind===b.kind?0:(a.kind==='entity'?-1:1))||a.begin-b.begin||b.end-a.end);
  const laneEnds = [];
  for (const s of order){
    let l = 0; while (l < laneEnds.length && laneEnds[l] > s.begin) l++;
    laneEnds[l] = s.end; s.lane = l;
  }
  return laneEnds.length;
}

function visible(s){
  if (state.hidden.has(s.label)) return false;
  if (s.kind==='entity'){
    const a = s.assertions && s.assertions.length ? s.assertions : ['affirmed'];
    if (a.every(x=>state.hiddenAsr.has(x))) return false;
  }
  return true;
}

function renderDoc(i){
  const d = DATA.docs[i], text = d.text, note = $('#note');
  note.textContent='';
  const spans = d.spans.filter(visible);
  const nl = lanes(spans);
  note.style.setProperty('--lh', (1.5 + nl*0.42).toFixed(2));
  const cuts = new Set([0, text.length]);
  for (const s of spans){cuts.add(s.begin); cuts.add(s.end);}
  const pts = Array.from(cuts).sort((a,b)=>a-b);
  const starts = new Map(); for (const s of spans){ if(!starts.has(s.begin)) starts.set(s.begin, []); starts.get(s.begin).push(s); }
  let open = [];
  const frag = document.createDocumentFragment();
  for (let k=0; k<pts.length-1; k++){
    const a = pts[k], b = pts[k+1];
    open = open.filter(s=>s.end>a).concat(starts.get(a)||[]);
    const seg = el('span', {class:'seg', 'data-b': String(a), 'data-e': String(b)});
    seg.textContent = text.slice(a, b);
    if (open.length){
      seg.dataset.spans = open.map(s=>s.id).join(' ');
      for (const s of open){
        const cls = ['bar', s.kind==='entity'?'e':'m', 'l-'+s.label].concat(s.assertions||[]);
        if (s.diff) cls.push(s.diff);
        const bar = el('i', {class: cls.join(' '), 'data-span': String(s.id)});
        bar.style.bottom = (-3 - s.lane*5) + 'px';
        bar.style.background = COLOURS[s.label] || '#666';
        seg.append(bar);
        for (const x of (s.assertions||[])) seg.classList.add('t-'+x);
      }
    }
    frag.append(seg);
  }
  note.append(frag);
  requestAnimationFrame(()=>drawArcs(d));
}

function firstRect(spanId){
  const bar = document.querySelector('#note .bar[data-span="'+spanId+'"]');
  return bar ? bar.parentElement.getClientRects()[0] : null;
}

function drawArcs(d){
  const svg = $('#arcs'), base = $('#doc').getBoundingClientRect();
  svg.textContent=''; svg.setAttribute('width', base.width); svg.setAttribute('height', base.height);
  const byId = new Map(d.spans.map(s=>[s.id, s]));
  for (const r of d.relations){
    const e = byId.get(r.entity), m = byId.get(r.modifier);
    if (!visible(e) || !visible(m)) continue;
    const a = firstRect(r.entity), b = firstRect(r.modifier);
    if (!a || !b) continue;
    const x1 = a.left - base.left + 2, y1 = a.top - base.top, x2 = b.left - base.left + 2, y2 = b.top - base.top;
    const lift = Math.min(40, 8 + Math.abs(x2-x1)/12 + Math.abs(y2-y1)/4);
    const p = document.createElementNS('http://www.w3.org/2000/svg', 'path');
    p.setAttribute('d', 'M'+x1+','+y1+' C'+x1+','+(Math.min(y1,y2)-lift)+' '+x2+','+(Math.min(y1,y2)-lift)+' '+x2+','+y2);
    p.setAttribute('data-entity', String(r.entity)); p.setAttribute('data-modifier', String(r.modifier));
    p.setAttribute('class', 'arc ' + (r.diff||''));
    svg.append(p);
  }
}

function details(seg){
  const d = DATA.docs[state.doc];
  const ids = (seg.dataset.spans||'').split(' ').filter(Boolean).map(Number);
  document.querySelectorAll('#note .sel').forEach(x=>x.classList.remove('sel'));
  document.querySelectorAll('#arcs .hl').forEach(x=>x.classList.remove('hl'));
  seg.classList.add('sel');
  const box = $('#details'); box.textContent=''; box.classList.remove('hidden');
  box.append(el('button', {text:'close', style:'float:right'}));
  box.firstChild.onclick=()=>box.classList.add('hidden');
  for (const id of ids){
    const s = d.spans[id];
    box.append(el('h3', {text: s.kind+': '+s.label+(s.diff?' ('+({tp:'match',fp:'false positive',fn:'missed: gold only'})[s.diff]+')':'')}));
    const t = el('table');
    const rows = [['offsets', s.begin+'-'+s.end], ['text', d.text.slice(s.begin, s.end)], ['confidence', String(s.confidence)]];
    if (s.assertions) rows.push(['assertion', s.assertions.length? s.assertions.join(', ') : 'affirmed']);
    for (const k in s.features) if (k !== 'confidence') rows.push([k, String(s.features[k])]);
    for (const r of d.relations){
      if (r.entity===id){const m=d.spans[r.modifier]; rows.push(['→ '+m.label, d.text.slice(m.begin,m.end)+' ['+m.begin+'-'+m.end+'] p='+r.confidence]);}
      if (r.modifier===id){const e=d.spans[r.entity]; rows.push(['← '+e.label, d.text.slice(e.begin,e.end)+' ['+e.begin+'-'+e.end+']']);}
    }
    for (const [k,v] of rows) t.append(el('tr', {}, el('td',{text:k}), el('td',{text:v})));
    box.append(t);
    document.querySelectorAll('#arcs path[data-entity="'+id+'"],#arcs path[data-modifier="'+id+'"]').forEach(p=>p.classList.add('hl'));
  }
}

function summary(){
  const c = $('#summary'); c.textContent='';
  const S = DATA.summary;
  c.append(el('h2', {text: 'Corpus summary: '+DATA.docs.length+' notes'}));
  if (DATA.scores){
    c.append(el('h3', {text:'Against gold (exact offsets, as kiwi-cas evaluate)'}));
    for (const task of ['ner','modifier','re']){
      const t = el('table', {class:'sum', 'data-task':task});
      t.append(el('tr', {}, ...[task,'TP','FP','FN','P','R','F1'].map(h=>el('th',{text:h}))));
      for (const [label, v] of Object.entries(DATA.scores[task]))
        t.append(el('tr', {'data-label':label}, el('td',{text: label==='__micro__'?'all (micro)':label}),
          ...[v.tp,v.fp,v.fn,v.p.toFixed(3),v.r.toFixed(3),v.f1.toFixed(3)].map(x=>el('td',{text:String(x)}))));
      c.append(t);
    }
  }
  const t = el('table', {class:'sum'});
  t.append(el('tr', {}, el('th',{text:'type'}), el('th',{text:'count'})));
  for (const [k,v] of Object.entries(S.per_type)) t.append(el('tr', {}, el('td',{text:k}), el('td',{text:String(v)})));
  c.append(el('h3',{text:'Annotations per type'}), t);
  if (DATA.failed.length){
    c.append(el('h3', {class:'warn', text: DATA.failed.length+' files failed'}));
    const f = el('table', {class:'sum', id:'failed'});
    f.append(el('tr', {}, ...['file','error','message'].map(h=>el('th',{text:h}))));
    for (const x of DATA.failed) f.append(el('tr', {}, el('td',{text:x.file}), el('td',{text:x.error_type||''}), el('td',{text:x.message||''})));
    c.append(f);
  }
  const p = el('table', {class:'sum'});
  p.append(el('tr', {}, ...['note','entities','modifiers','relations'].map(h=>el('th',{text:h}))));
  DATA.docs.slice(0, 1000).forEach((d,i)=>{const r=el('tr',{}, el('td',{text:d.name}), ...['entities','modifiers','relations'].map(k=>el('td',{text:String(d.counts[k])}))); r.onclick=()=>show(i); p.append(r);});
  c.append(el('h3',{text:'Per note'}), p);
}

function show(i){
  state.doc = i;
  $('#summary').classList.toggle('hidden', i>=0); $('#doc').classList.toggle('hidden', i<0);
  $('#details').classList.add('hidden');
  if (i>=0){ $('#title').textContent = DATA.docs[i].name; renderDoc(i); } else { $('#title').textContent=''; summary(); }
  docList();
}

function filters(){
  const f = $('#filters');
  const labels = Array.from(new Set(DATA.docs.flatMap(d=>d.spans.map(s=>s.label))));
  const ents = DATA.entity_labels.filter(l=>labels.includes(l)), mods = DATA.modifier_labels.filter(l=>labels.includes(l));
  for (const l of ents.concat(mods)){
    const cb = el('input', {type:'checkbox', 'data-label': l}); cb.checked = true;
    cb.onchange=()=>{cb.checked?state.hidden.delete(l):state.hidden.add(l); if(state.doc>=0) renderDoc(state.doc);};
    const sw = el('span', {class:'sw'}); sw.style.background = COLOURS[l];
    f.append(el('label', {}, cb, sw, ' '+l));
  }
  f.append(el('b', {text:'assertion:'}));
  for (const a of ['affirmed','negated','uncertain','conditional','other_subject']){
    const cb = el('input', {type:'checkbox', 'data-assertion': a}); cb.checked = true;
    cb.onchange=()=>{cb.checked?state.hiddenAsr.delete(a):state.hiddenAsr.add(a); if(state.doc>=0) renderDoc(state.doc);};
    f.append(el('label', {}, cb, ' '+a.replace('_',' ')));
  }
}

$('#note').addEventListener('click', (ev)=>{const seg = ev.target.closest('.seg'); if (seg && seg.dataset.spans) details(seg);});
$('#note').addEventListener('mouseover', (ev)=>{const seg = ev.target.closest('.seg'); if (seg && seg.dataset.spans) seg.title = seg.dataset.spans.split(' ').map(id=>{const s=DATA.docs[state.doc].spans[+id]; return s.label+' ['+s.begin+'-'+s.end+']';}).join('\n');});
$('#search').addEventListener('input', (ev)=>{state.filter = ev.target.value; state.page = 0; docList();});
$('#prev').onclick=()=>{state.page=Math.max(0,state.page-1); docList();};
$('#next').onclick=()=>{state.page=state.page+1; docList();};
window.addEventListener('resize', ()=>{ if (state.doc>=0) drawArcs(DATA.docs[state.doc]); });
filters();
show(DATA.docs.length === 1 ? 0 : -1);
window.kiwiView = {show: show, state: state};
})();
"""

LEGEND = ('<div id="legend"><span><i></i>affirmed</span>'
          '<span><i style="background-image:repeating-linear-gradient(45deg,#fff 0 2px,transparent 2px 5px)"></i>'
          '<s>negated</s> (hatched, struck through)</span>'
          '<span><i style="background-image:repeating-linear-gradient(90deg,transparent 0 4px,#fff 4px 6px)"></i>'
          '<em>uncertain</em> (dashed, italic)</span>'
          '<span><i style="background-image:radial-gradient(#fff 40%,transparent 45%);background-size:4px 4px"></i>'
          '<em>conditional</em> (dotted, italic)</span>'
          '<span><i style="border-top:1px solid #000;border-bottom:1px solid #000;background-clip:padding-box"></i>'
          'other subject (framed)</span>{gold}<span>entities: thick bars nearest the text; modifiers: thin bars '
          'below; curves: entity → modifier relations</span></div>')
GOLD_LEGEND = ('<span><i style="outline:1px solid #c00"></i>false positive</span>'
               '<span><i style="background:repeating-linear-gradient(90deg,#999 0 3px,transparent 3px 6px)"></i>'
               'missed (gold only)</span>')


def render(docs: list[dict], failed: list[dict], scores: dict | None, title: str) -> str:
    per_type: dict[str, int] = {}
    for d in docs:
        for s in d["spans"]:
            if s.get("diff") != "fn":
                per_type[s["label"]] = per_type.get(s["label"], 0) + 1
    per_type["relations"] = sum(len(d["relations"]) for d in docs)
    data = {"docs": docs, "failed": failed, "scores": scores, "summary": {"per_type": per_type},
            "colours": {**ENTITY_COLOURS, **MODIFIER_COLOURS}, "entity_labels": list(schema.ENTITY_LABELS),
            "modifier_labels": list(schema.MODIFIER_LABELS)}
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    legend = LEGEND.replace("{gold}", GOLD_LEGEND if scores else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>{html.escape(title)}</title><style>{CSS}</style></head>
<body><header><h1>kiwi_cas viewer</h1><span id="title"></span><span style="color:#666;font-size:12px">{html.escape(title)} · kiwi_cas {__version__} · contains note text (PHI): keep it where the notes are kept</span></header>
<div id="main"><nav><input id="search" placeholder="filter notes by name"><div id="pager"><button id="prev">◀</button><span id="pageinfo"></span><button id="next">▶</button></div><ul id="docs"></ul></nav>
<section id="content"><div id="summary"></div><div id="doc" class="hidden"><div id="filters"></div>{legend}<svg id="arcs"></svg><div id="note"></div></div></section></div>
<div id="details" class="hidden"></div>
<script type="application/json" id="kiwi-data">{payload}</script>
<script>{JS}</script></body></html>
"""
