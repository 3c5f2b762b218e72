"""``/docs``: a self-contained page that renders /openapi.json with no network access."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Taskwarden API</title>
<style>
body{font:14px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd;text-transform:capitalize}
.op{border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.5rem .8rem}
.m{display:inline-block;min-width:4.5rem;font-weight:700}
.GET{color:#0a6}.POST{color:#06c}.PUT,.PATCH{color:#b60}.DELETE{color:#c22}
code{background:#f4f4f4;padding:0 .3rem}pre{background:#f7f7f7;padding:.6rem;overflow:auto}
summary{cursor:pointer}
</style></head><body>
<h1>Taskwarden API</h1><p id="intro">Loading /openapi.json ...</p><div id="ops"></div>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  document.getElementById('intro').textContent = doc.info.description + ' Version ' + doc.info.version + '.';
  const groups = {};
  for (const [path, ops] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(ops))
      (groups[op.tags[0]] = groups[op.tags[0]] || []).push([method.toUpperCase(), path, op]);
  const root = document.getElementById('ops');
  for (const [tag, ops] of Object.entries(groups)) {
    const h = document.createElement('h2'); h.textContent = tag; root.appendChild(h);
    for (const [method, path, op] of ops) {
      const d = document.createElement('details'); d.className = 'op';
      const s = document.createElement('summary');
      s.innerHTML = '<span class="m ' + method + '"></span><code></code> ';
      s.children[0].textContent = method; s.children[1].textContent = path;
      s.appendChild(document.createTextNode(op.summary)); d.appendChild(s);
      const pre = document.createElement('pre');
      const ref = op.requestBody && op.requestBody.content['application/json'].schema.$ref;
      const body = ref ? doc.components.schemas[ref.split('/').pop()] : null;
      pre.textContent = JSON.stringify({parameters: op.parameters, body: body}, null, 2);
      d.appendChild(pre); root.appendChild(d);
    }
  }
});
</script></body></html>
"""
