// volsam web page: a client of the session API (see /docs), drawn with Niivue (BSD-2-Clause, bundled).
// Voxel coordinates sent to the server are indices (i, j, k) of the image file as uploaded; Niivue reports
// voxels of its RAS-reoriented copy, converted back by nativeVoxel().
"use strict";
(() => {
  const { Niivue, NVImage, SLICE_TYPE, DRAG_MODE, SHOW_RENDER } = window.niivue || {};
  const $ = (id) => document.getElementById(id);
  const PALETTE = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]];
  const state = { id: null, lease: null, geometry: null, objects: [], active: null, labels: null, busy: 0,
    frames: 0, lastChange: null, errors: [] };
  let nv = null;

  function say(text, isError = false) {
    $("status").textContent = text;
    $("status").style.color = isError ? "#f88" : "";
    if (isError) state.errors.push(text);
  }

  // The token and the session's lease travel in headers only, never in a URL (docs/security.md): images and
  // label maps load through Niivue's fetch with these headers, downloads and the event stream through fetch.
  function authHeaders(extra = {}) {
    const headers = Object.assign({}, extra);
    if ($("token").value) headers.Authorization = `Bearer ${$("token").value}`;
    if (state.lease) headers["X-Session-Lease"] = state.lease;
    return headers;
  }

  async function request(path, options = {}) {
    const response = await fetch(path, Object.assign({}, options, { headers: authHeaders(options.headers) }));
    if (response.status === 401) $("tokenbox").hidden = false;
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail; } catch (e) { /* not JSON */ }
      if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join("; ");
      throw new Error(`${detail} (HTTP ${response.status})`);
    }
    return response;
  }

  async function api(path, options = {}) {
    const response = await request(path, options);
    return response.status === 204 ? null : response.json();
  }

  async function download(path, name) {  // a header-authenticated fetch, saved through a temporary blob: link
    try {
      const blob = await (await request(path)).blob();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = name;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    } catch (e) { say(e.message, true); }
  }

  function colour(label) { return PALETTE[(label - 1) % PALETTE.length]; }

  function labelColormap() {
    const top = Math.max(1, ...state.objects.map((o) => o.label));
    const cm = { R: [0], G: [0], B: [0], A: [0], I: [0], labels: ["background"] };
    for (let v = 1; v <= top; v++) {
      const [r, g, b] = colour(v);
      const known = state.objects.find((o) => o.label === v);
      cm.R.push(r); cm.G.push(g); cm.B.push(b); cm.A.push(known ? 255 : 0); cm.I.push(v);
      cm.labels.push(known ? known.name : "");
    }
    return cm;
  }

  function nativeVoxel(v) {
    const vol = nv.volumes[0];
    const p = vol.permRAS;
    if (p[0] === 1 && p[1] === 2 && p[2] === 3) return [v[0], v[1], v[2]].map(Math.round);
    const m = vol.toRASvox;
    return [0, 1, 2].map((r) => Math.round(m[r] * v[0] + m[4 + r] * v[1] + m[8 + r] * v[2] + m[12 + r]));
  }

  function rasVoxel(ijk) {  // the inverse of nativeVoxel (a signed axis permutation: its inverse is its transpose)
    const vol = nv.volumes[0], p = vol.permRAS, m = vol.toRASvox;
    if (!m || (p[0] === 1 && p[1] === 2 && p[2] === 3)) return ijk.slice();
    const d = [0, 1, 2].map((r) => ijk[r] - m[12 + r]);
    return [0, 1, 2].map((c) => m[4 * c] * d[0] + m[4 * c + 1] * d[1] + m[4 * c + 2] * d[2]);
  }

  function canvasPoint(ijk) {  // CSS pixels on the canvas of native voxel (i, j, k); null when not shown
    const pos = nv.frac2canvasPos(nv.vox2frac(rasVoxel(ijk)));
    return pos ? [pos[0] / nv.uiData.dpr, pos[1] / nv.uiData.dpr] : null;
  }

  function goTo(ijk) {  // put the crosshair (and so the displayed slices) on native voxel (i, j, k)
    nv.scene.crosshairPos = nv.vox2frac(rasVoxel(ijk));
    nv.drawScene();
  }

  async function refreshLabels() {
    const vol = await NVImage.loadFromUrl({ url: `/api/sessions/${state.id}/labelmap?t=${Date.now()}`,
      name: "labels.nii.gz", headers: authHeaders() });
    vol.setColormapLabel(labelColormap());
    vol.opacity = Number($("opacity").value);
    if (state.labels) nv.removeVolume(state.labels);
    nv.addVolume(vol);
    state.labels = vol;
  }

  function renderObjects() {
    const list = $("objects");
    list.textContent = "";
    for (const o of state.objects) {
      const li = document.createElement("li");
      li.dataset.label = o.label;
      li.className = o.label === state.active ? "active" : "";
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = `rgb(${colour(o.label).join(",")})`;
      li.append(sw, `${o.name} (${o.label})`);
      li.onclick = () => { state.active = o.label; renderObjects(); };
      list.append(li);
    }
  }

  async function afterEdit(change) {
    state.lastChange = change;
    await refreshLabels();
    const where = change.frames ? `slices ${change.frames[0]}–${change.frames[1]}` : "nothing changed";
    say(`done in ${change.seconds.toFixed(1)} s: ${where}`);
  }

  async function edit(path, body) {
    try {
      const change = await api(path, body === undefined ? { method: "POST" }
        : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      await afterEdit(change);
    } catch (e) { say(e.message, true); }
  }

  function tool() { return document.querySelector('input[name="tool"]:checked').value; }

  function setMouse() {
    if (!nv) return;
    if (tool() === "look") nv.setMouseEventConfig(undefined);
    else nv.setMouseEventConfig({ leftButton: { primary: DRAG_MODE.callbackOnly },
      rightButton: DRAG_MODE.crosshair, centerButton: DRAG_MODE.pan });
  }

  async function onRelease(p) {
    if (!state.id || tool() === "look" || p.tileIdx < 0 || p.axCorSag < 0 || p.axCorSag > 2) return;
    if (state.active === null) { say("add an object first", true); return; }
    const a = nativeVoxel(Array.from(p.voxStart)), b = nativeVoxel(Array.from(p.voxEnd));
    const size = state.geometry.size;
    const lo = a.map((v, n) => Math.max(0, Math.min(v, b[n]))), hi = a.map((v, n) => Math.min(size[n] - 1, Math.max(v, b[n])));
    const click = lo.every((v, n) => v === hi[n]);
    if (tool() === "box") {
      if (click) return;
      const axis = state.geometry.axis;
      if (lo[axis] !== hi[axis]) { say(`draw boxes on the slice plane across axis ${"ijk"[axis]}`, true); return; }
      const [u, v] = [0, 1, 2].filter((n) => n !== axis);
      await edit(`/api/sessions/${state.id}/prompts`, { object: state.active, type: "box", slice: lo[axis],
        box: [lo[u], lo[v], hi[u], hi[v]] });
    } else if (click) {
      await edit(`/api/sessions/${state.id}/prompts`, { object: state.active, type: "point", point: lo,
        positive: tool() === "add" });
    }
  }

  function rubberBand() {
    const canvas = $("gl"), rubber = $("rubber");
    let start = null;
    canvas.addEventListener("mousedown", (e) => { if (e.button === 0 && tool() === "box") start = [e.offsetX, e.offsetY]; });
    canvas.addEventListener("mousemove", (e) => {
      if (!start) return;
      Object.assign(rubber.style, { display: "block", left: `${Math.min(start[0], e.offsetX)}px`,
        top: `${Math.min(start[1], e.offsetY)}px`, width: `${Math.abs(e.offsetX - start[0])}px`,
        height: `${Math.abs(e.offsetY - start[1])}px` });
    });
    const end = () => { start = null; rubber.style.display = "none"; };
    canvas.addEventListener("mouseup", end);
    canvas.addEventListener("mouseleave", end);
  }

  function onEvent(e) {
    if (e.type === "busy") { state.busy += 1; state.frames = 0; $("progress").hidden = false; $("frames").textContent = ""; }
    else if (e.type === "frame") { state.frames += 1; $("frames").textContent = `${state.frames} slices segmented`; }
    else if (e.type === "idle") { state.busy = Math.max(0, state.busy - 1); $("progress").hidden = state.busy === 0; }
    else if (e.type === "closed") say("the session was closed", true);
  }

  async function listen(id) {  // Server-Sent Events read with fetch (EventSource cannot send headers)
    let after = 0;
    while (state.id === id) {
      try {
        const response = await request(`/api/sessions/${id}/events?after=${after}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done || state.id !== id) { reader.cancel().catch(() => {}); break; }
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const idLine = block.split("\n").find((l) => l.startsWith("id: "));
            const data = block.split("\n").find((l) => l.startsWith("data: "));
            if (idLine) after = Number(idLine.slice(4)) + 1;
            if (data) {
              const e = JSON.parse(data.slice(6));
              onEvent(e);
              if (e.type === "closed") return;
            }
          }
        }
      } catch (e) { if (state.id !== id) return; }
      await new Promise((r) => setTimeout(r, 1000));  // the stream broke: pick up where it was
    }
  }

  async function open() {
    const file = $("file").files[0];
    if (!file) { say("choose a file first", true); return; }
    if (!nv) { say("the viewer did not load (static/vendor/niivue.umd.js missing: run `make install`)", true); return; }
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("engine", $("engine").value);
    form.append("modality", $("modality").value);
    if ($("model").value) form.append("model", $("model").value);
    say(`uploading ${file.name}…`);
    try {
      state.lease = null;
      const created = await api("/api/sessions", { method: "POST", body: form });
      Object.assign(state, { id: created.id, lease: created.lease, geometry: created.geometry, objects: [], active: null,
        labels: null });
      await nv.loadVolumes([{ url: `/api/sessions/${state.id}/image`, name: "image.nii.gz", headers: authHeaders() }]);
      $("download-seg").hidden = !created.geometry.dicom_seg;  // only for images uploaded as a DICOM series
      listen(state.id);
      await addObject();
      say(`${file.name}: ${created.geometry.size.join(" × ")} voxels. Draw a box on a slice.`);
    } catch (e) { say(e.message, true); }
  }

  async function addObject() {
    const name = $("objname").value || `object ${state.objects.length + 1}`;
    const o = await api(`/api/sessions/${state.id}/objects`, { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name }) });
    state.objects.push(o);
    state.active = o.label;
    $("objname").value = "";
    renderObjects();
  }

  function windowPreset() {
    if (!nv || !nv.volumes.length) return;
    const vol = nv.volumes[0], value = $("window").value;
    if (value === "auto") { vol.cal_min = vol.robust_min; vol.cal_max = vol.robust_max; }
    else { const [w, l] = value.split(",").map(Number); vol.cal_min = l - w / 2; vol.cal_max = l + w / 2; }
    nv.updateGLVolume();
  }

  async function start() {
    $("open").onclick = open;
    $("addobj").onclick = () => (state.id ? addObject().catch((e) => say(e.message, true)) : say("open a volume first", true));
    $("download").onclick = (ev) => { ev.preventDefault(); if (state.id) download(`/api/sessions/${state.id}/labelmap`, "labelmap.nii.gz"); };
    $("download-seg").onclick = (ev) => {
      ev.preventDefault();
      if (state.id) download(`/api/sessions/${state.id}/labelmap?format=dicom-seg`, "labelmap.dcm");
    };
    $("token").onchange = () => { if ($("token").value) api("/api/login", { method: "POST" }).catch((e) => say(e.message, true)); };
    $("undo").onclick = () => state.id && edit(`/api/sessions/${state.id}/undo`);
    $("redo").onclick = () => state.id && edit(`/api/sessions/${state.id}/redo`);
    $("window").onchange = windowPreset;
    $("opacity").oninput = () => { if (state.labels) nv.setOpacity(nv.volumes.indexOf(state.labels), Number($("opacity").value)); };
    for (const b of document.querySelectorAll("[data-view]")) b.onclick = () => nv && nv.setSliceType(Number(b.dataset.view));
    for (const r of document.querySelectorAll('input[name="tool"]')) r.onchange = setMouse;
    if (!Niivue) { say("the viewer did not load (static/vendor/niivue.umd.js missing: run `make install`)", true); return; }
    nv = new Niivue({ sliceType: SLICE_TYPE.MULTIPLANAR, multiplanarShowRender: SHOW_RENDER.NEVER,
      dragAndDropEnabled: false, logLevel: "warn" });
    await nv.attachToCanvas($("gl"));
    nv.onDragRelease = (p) => { onRelease(p); };
    setMouse();
    rubberBand();
  }

  window.volsam = { state, get nv() { return nv; }, nativeVoxel, rasVoxel, canvasPoint, goTo };
  start();
})();
