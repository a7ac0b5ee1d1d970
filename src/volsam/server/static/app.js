// volsam web page: a client of the session API (see /docs), drawn with Niivue (BSD-2-Clause, bundled).
// Voxel coordinates sent to the server are indices (i, j, k) of the image file as uploaded; Niivue reports
// voxels of its RAS-reoriented copy, converted back by nativeVoxel().
// A 2D image (a picture, a single DICOM frame: geometry.is_2d) is one slice: one axial view, no slice
// sliders, its colour picture when it has one (NIfTI RGB24 from /image?colour=true; no window / level then),
// shown radiological so that column 0 is on the left and row 0 at the top, as image viewers show it.
"use strict";
(() => {
  const { Niivue, NVImage, SLICE_TYPE, DRAG_MODE, SHOW_RENDER } = window.niivue || {};
  const VIEWS = ["Axial", "Coronal", "Sagittal"];  // Niivue's view v shows the slices across RAS axis 2 - v
  const CT_PRESETS = [["400,40", "CT abdomen"], ["1500,-600", "CT lung"], ["1800,400", "CT bone"], ["80,40", "CT brain"],
    ["350,50", "CT mediastinum"]];
  const PERCENTILES = [["0.5,99.5", "0.5–99.5 %"], ["1,99", "1–99 %"], ["2,98", "2–98 %"], ["5,95", "5–95 %"],
    ["0,100", "full range"]];  // MR, PET and others: percentiles of the non-zero voxels (the model's own is 0.5–99.5)
  const $ = (id) => document.getElementById(id);
  const PALETTE = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]];
  const state = { id: null, lease: null, geometry: null, objects: [], active: null, labels: null, busy: 0,
    frames: 0, slices: null, total: null, lastChange: null, errors: [], prompts: [], hidden: new Set(), stats: {}, view: 0,
    running: false, flat: false };
  let nv = null;
  let video = null;  // the video view (static/video.js), made in start()
  const isVideo = () => Boolean(state.geometry && state.geometry.video);

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
    if (response.status === 401) { $("token").focus(); say("this server needs its token: type it in the Token box", true); }
    if (!response.ok) {
      let detail = response.statusText, kind = null;
      try { const body = await response.json(); detail = body.detail; kind = body.error; } catch (e) { /* not JSON */ }
      if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join("; ");
      const error = new Error(`${detail} (HTTP ${response.status})`);
      error.kind = kind;
      throw error;
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
      cm.R.push(r); cm.G.push(g); cm.B.push(b); cm.A.push(known && !state.hidden.has(v) ? 255 : 0); cm.I.push(v);
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
    nv.createOnLocationChange();
  }

  // -- label map, objects and their statistics --------------------------------------------------------------
  async function refreshLabels() {
    if (isVideo()) { await video.refresh(); renderObjects(); return; }  // the frame shown, not a whole label map
    const vol = await NVImage.loadFromUrl({ url: `/api/sessions/${state.id}/labelmap?t=${Date.now()}`,
      name: "labels.nii.gz", headers: authHeaders() });
    vol.setColormapLabel(labelColormap());
    vol.opacity = Number($("opacity").value);
    if (state.labels) nv.removeVolume(state.labels);
    nv.addVolume(vol);
    state.labels = vol;
    state.stats = labelStats(vol);
    renderObjects();
  }

  function labelStats(vol) {  // per label: voxels, ml and the range of slices along the session's axis
    const img = vol.img, [nx, ny] = [vol.hdr.dims[1], vol.hdr.dims[2]], axis = state.geometry.axis;
    const ml = state.geometry.spacing.reduce((a, b) => a * b, 1) / 1000;
    const out = {};
    for (let n = 0; n < img.length; n++) {
      const v = img[n];
      if (!v) continue;
      const ijk = [n % nx, Math.floor(n / nx) % ny, Math.floor(n / (nx * ny))];
      const s = out[v] || (out[v] = { voxels: 0, first: ijk[axis], last: ijk[axis] });
      s.voxels += 1;
      if (ijk[axis] < s.first) s.first = ijk[axis];
      if (ijk[axis] > s.last) s.last = ijk[axis];
    }
    for (const s of Object.values(out)) s.ml = s.voxels * ml;
    return out;
  }

  // -- live preview: the running step's slice masks (GET .../preview), painted as they come ------------------
  // The server keeps each slice mask the step has made as a box and its bits (8 per byte, first pixel in the
  // top bit); `region` is the part of the slice the mask covers: the object's voxels there are the mask's.
  // Rows / columns of a slice along axis a are the other two native axes, the higher first (k: j, i; j: k, i;
  // i: k, j). The label map downloaded when the step ends replaces all of it; a stopped step reloads it too.
  const preview = { after: 0, busy: false, again: false, live: false, painted: false };

  function paintPreview(answer, vol = state.labels) {  // returns the voxels set
    if (!vol || !answer.slices.length) return 0;
    const img = vol.img, dims = vol.hdr.dims, axis = state.geometry.axis;
    const stride = [1, dims[1], dims[1] * dims[2]];
    const [ra, ca] = axis === 2 ? [1, 0] : axis === 1 ? [2, 0] : [2, 1];
    let set = 0;
    for (const p of answer.slices) {
      const base = p.index * stride[axis], [r0, r1, c0, c1] = p.region;
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) {
          const n = base + r * stride[ra] + c * stride[ca];
          if (img[n] === p.label) img[n] = 0;
        }
      }
      if (!p.box.length) continue;
      const [b0, b1, d0, d1] = p.box, w = d1 - d0, bits = atob(p.bits);
      for (let n = 0; n < (b1 - b0) * w; n++) {
        if ((bits.charCodeAt(n >> 3) >> (7 - (n & 7))) & 1) {
          img[base + (b0 + Math.floor(n / w)) * stride[ra] + (d0 + (n % w)) * stride[ca]] = p.label;
          set += 1;
        }
      }
    }
    if (vol === state.labels) {
      if (!preview.painted) vol.setColormapLabel(labelColormap());  // an object added since the last load
      preview.painted = true;
      nv.updateGLVolume();
    }
    return set;
  }

  async function fetchPreview() {  // one request at a time; frames reported meanwhile ask for one more
    if (preview.busy) { preview.again = true; return; }
    preview.busy = true;
    try {
      do {
        preview.again = false;
        const vol = state.labels;
        const answer = await api(`/api/sessions/${state.id}/preview?after=${preview.after}`);
        preview.after = answer.next;
        if (answer.more) preview.again = true;  // the answer stopped at its size bound
        // a late answer (the step ended, or the label map was reloaded meanwhile) is not painted
        if (answer.running && preview.live && vol === state.labels) paintPreview(answer, vol);
      } while (preview.again && preview.live);
    } catch (e) { /* the preview is a courtesy: the label map comes when the step ends */ }
    finally { preview.busy = false; }
  }

  function recolour() {
    if (isVideo()) { video.refresh().catch((e) => say(e.message, true)); return; }
    if (!state.labels) return;
    state.labels.setColormapLabel(labelColormap());
    nv.updateGLVolume();
  }

  function renderObjects() {
    const list = $("objects");
    list.textContent = "";
    for (const o of state.objects) {
      const li = document.createElement("li");
      li.dataset.label = o.label;
      li.className = o.label === state.active ? "active" : "";
      const shown = document.createElement("input");
      shown.type = "checkbox";
      shown.checked = !state.hidden.has(o.label);
      shown.title = "show / hide";
      shown.className = "visible";
      shown.onclick = (ev) => {
        ev.stopPropagation();
        if (shown.checked) state.hidden.delete(o.label); else state.hidden.add(o.label);
        recolour();
      };
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = `rgb(${colour(o.label).join(",")})`;
      const del = document.createElement("button");
      del.textContent = "×";
      del.title = "delete this object (undoable)";
      del.className = "delete";
      del.onclick = (ev) => { ev.stopPropagation(); removeObject(o.label); };
      const stats = document.createElement("span");
      stats.className = "stats";
      const s = state.stats[o.label];
      const axis = "ijk"[state.geometry.axis];
      const [si, sj] = state.geometry.spacing;
      if (isVideo()) stats.textContent = `${video.pixels(o.label)} px on frame ${video.frame}`;
      else if (!s) stats.textContent = "empty";
      else if (state.flat) stats.textContent = `${s.voxels} px · ${(s.voxels * si * sj).toFixed(1)} mm²`;
      else stats.textContent = `${s.ml.toFixed(2)} ml · ${axis} ${s.first}–${s.last}`;
      li.append(del, shown, sw, `${o.name} (${o.label})`, stats);
      li.onclick = () => { state.active = o.label; renderObjects(); };
      list.append(li);
    }
  }

  async function removeObject(label) {
    try {
      const change = await api(`/api/sessions/${state.id}/objects/${label}`, { method: "DELETE" });
      state.objects = state.objects.filter((o) => o.label !== label);
      if (state.active === label) state.active = state.objects.length ? state.objects[state.objects.length - 1].label : null;
      await afterEdit(change);
    } catch (e) { say(e.message, true); }
  }

  async function syncObjects() {  // after undo / redo an object may come back or go
    const described = await api(`/api/sessions/${state.id}`);
    state.objects = described.objects.map((o) => ({ label: o.label, name: o.name }));
    if (!state.objects.some((o) => o.label === state.active)) {
      state.active = state.objects.length ? state.objects[state.objects.length - 1].label : null;
    }
  }

  // -- the prompts, drawn as markers until undone ---------------------------------------------------------
  async function refreshPrompts() {
    const doc = await api(`/api/sessions/${state.id}/prompts?document=true`);  // mask prompts: named, not sent
    state.prompts = [];
    for (const o of doc ? doc.objects : []) for (const p of o.prompts) state.prompts.push(Object.assign({ label: o.label }, p));
    drawMarks();
  }

  function tileShows(tile, ijk) {  // whether screen tile `tile` shows the slice through native voxel ijk
    const frac = nv.vox2frac(rasVoxel(ijk)), r = 2 - tile.axCorSag, dims = nv.volumes[0].dimsRAS;
    return Math.abs(frac[r] - tile.sliceFrac) < 0.5 / dims[r + 1];
  }

  function tilePoint(tile, n, ijk) {
    const found = nv.frac2canvasPosWithTile(nv.vox2frac(rasVoxel(ijk)), n);
    const pos = found && found.tileIndex === n ? found.pos : null;
    return pos ? [pos[0] / nv.uiData.dpr, pos[1] / nv.uiData.dpr] : null;
  }

  function drawMarks() {
    if (isVideo()) { video.draw(); return; }  // the video canvas draws its own markers
    const canvas = $("marks"), rect = canvas.getBoundingClientRect();
    canvas.width = rect.width;
    canvas.height = rect.height;
    const g = canvas.getContext("2d");
    if (!nv || !nv.volumes.length || !state.geometry) return;
    const axis = state.geometry.axis, [u, v] = [0, 1, 2].filter((n) => n !== axis);
    nv.screenSlices.forEach((tile, n) => {
      if (tile.axCorSag < 0 || tile.axCorSag > 2) return;
      crosshair(g, tile, n);
      for (const p of state.prompts) {
        if (state.hidden.has(p.label)) continue;
        const [r, gr, b] = colour(p.label);
        g.strokeStyle = `rgb(${r},${gr},${b})`;
        g.lineWidth = 1.5;
        if (p.box && p.slice !== undefined) {
          const a = [0, 0, 0], c = [0, 0, 0];
          a[axis] = c[axis] = p.slice;
          [a[u], a[v], c[u], c[v]] = p.box;
          if (!tileShows(tile, a)) continue;
          const pa = tilePoint(tile, n, a), pc = tilePoint(tile, n, c);
          if (!pa || !pc) continue;
          g.setLineDash([5, 3]);
          g.strokeRect(Math.min(pa[0], pc[0]), Math.min(pa[1], pc[1]), Math.abs(pc[0] - pa[0]), Math.abs(pc[1] - pa[1]));
          g.setLineDash([]);
        } else if (p.point) {
          if (!tileShows(tile, p.point)) continue;
          const q = tilePoint(tile, n, p.point);
          if (!q) continue;
          const positive = p.positive !== false;
          g.fillStyle = positive ? "#3c3" : "#e33";
          g.beginPath();
          g.arc(q[0], q[1], 5, 0, 2 * Math.PI);
          g.fill();
          g.strokeStyle = "#fff";
          g.beginPath();
          g.moveTo(q[0] - 3, q[1]); g.lineTo(q[0] + 3, q[1]);
          if (positive) { g.moveTo(q[0], q[1] - 3); g.lineTo(q[0], q[1] + 3); }
          g.stroke();
        }
      }
    });
  }

  // One CSS pixel wide whatever the zoom (Niivue's own is half a voxel wide: thick on small images), with a gap
  // around the point so that what is under it stays visible.
  function crosshair(g, tile, n) {
    const found = nv.frac2canvasPosWithTile(nv.scene.crosshairPos, n);
    if (!found || found.tileIndex !== n) return;
    const dpr = nv.uiData.dpr, [x, y] = [found.pos[0] / dpr, found.pos[1] / dpr];
    const [l, t, w, h] = tile.leftTopWidthHeight.map((c) => c / dpr), gap = 6;
    g.strokeStyle = "rgba(60, 255, 60, 0.75)";
    g.lineWidth = 1;
    g.beginPath();
    const cx = Math.round(x) + 0.5, cy = Math.round(y) + 0.5;
    g.moveTo(l, cy); g.lineTo(x - gap, cy); g.moveTo(x + gap, cy); g.lineTo(l + w, cy);
    g.moveTo(cx, t); g.lineTo(cx, y - gap); g.moveTo(cx, y + gap); g.lineTo(cx, t + h);
    g.stroke();
  }

  // -- slices: slider, number and position per view; keys and wheel -----------------------------------------
  function crosshairVox() { return nv.frac2vox(nv.scene.crosshairPos); }

  function nativeAxisOf(r) {  // the native axis (0 i, 1 j, 2 k) along RAS axis r
    const v = crosshairVox(), w = v.slice();
    w[r] += 1;
    const a = nativeVoxel(v), b = nativeVoxel(w);
    return [0, 1, 2].find((n) => a[n] !== b[n]);
  }

  function sliceInfo() {  // for each view: its RAS-voxel slider value, native axis and index, and mm position
    if (!nv || !nv.volumes.length) return null;
    const vox = crosshairVox(), native = nativeVoxel(vox), mm = nv.frac2mm(nv.scene.crosshairPos);
    return [0, 1, 2].map((view) => {
      const r = 2 - view, axis = nativeAxisOf(r);
      return { view, value: vox[r], count: nv.volumes[0].dimsRAS[r + 1], axis: "ijk"[axis], index: native[axis],
        mm: mm[r], letter: "RAS"[r] };
    });
  }

  function updateSlices() {
    const info = sliceInfo();
    if (!info) return;
    for (const s of info) {
      const row = document.querySelector(`.slice[data-view="${s.view}"]`), slider = row.querySelector("input");
      slider.max = s.count - 1;
      slider.value = s.value;
      row.querySelector(".number").textContent = `${s.axis} ${s.index} / ${s.count} · ${s.letter} ${s.mm.toFixed(1)} mm`;
    }
  }

  function setSlice(view, value) {  // view's slice to RAS voxel index `value` (clamped)
    const r = 2 - view, vox = crosshairVox(), count = nv.volumes[0].dimsRAS[r + 1];
    vox[r] = Math.max(0, Math.min(count - 1, Math.round(value)));
    nv.scene.crosshairPos = nv.vox2frac(vox);
    nv.drawScene();
    nv.createOnLocationChange();
  }

  function step(delta, view = state.view) {
    if (isVideo()) { video.step(delta); return; }
    if (nv && nv.volumes.length) setSlice(view, crosshairVox()[2 - view] + delta); }

  // -- window / level: presets per modality, typed values, right-drag -----------------------------------------
  function presets(modality) {
    const select = $("window");
    select.textContent = "";
    const add = (value, text) => { const o = document.createElement("option"); o.value = value; o.textContent = text; select.append(o); };
    if (modality === "CT") { add("auto", "auto (robust range)"); for (const [v, t] of CT_PRESETS) add(v, t); }
    else { for (const [v, t] of PERCENTILES) add(`p${v}`, t); }
  }

  function percentiles(vol, lo, hi) {  // of the non-zero voxels (a sample of at most ~200 000)
    const img = vol.img, stride = Math.max(1, Math.floor(img.length / 200000)), sample = [];
    for (let n = 0; n < img.length; n += stride) if (img[n] !== 0 && Number.isFinite(img[n])) sample.push(img[n]);
    if (!sample.length) return [0, 1];
    sample.sort((a, b) => a - b);
    const at = (p) => sample[Math.min(sample.length - 1, Math.floor((p / 100) * (sample.length - 1)))];
    const scale = (x) => x * (vol.hdr.scl_slope || 1) + (vol.hdr.scl_inter || 0);
    return [scale(at(lo)), scale(at(hi))];
  }

  function setWindow(lo, hi) {
    const vol = nv.volumes[0];
    vol.cal_min = lo;
    vol.cal_max = hi > lo ? hi : lo + 1e-3;
    nv.updateGLVolume();
    showWindow();
  }

  function showWindow() {
    const vol = nv.volumes[0];
    if (!vol) return;
    const w = vol.cal_max - vol.cal_min, l = (vol.cal_max + vol.cal_min) / 2;
    $("ww").value = Number(w.toPrecision(5));
    $("wl").value = Number(l.toPrecision(5));
  }

  function windowPreset() {
    if (!nv || !nv.volumes.length) return;
    const vol = nv.volumes[0], value = $("window").value;
    if (value === "auto") setWindow(vol.robust_min, vol.robust_max);
    else if (value.startsWith("p")) setWindow(...percentiles(vol, ...value.slice(1).split(",").map(Number)));
    else { const [w, l] = value.split(",").map(Number); setWindow(l - w / 2, l + w / 2); }
  }

  function typedWindow() {
    const w = Number($("ww").value), l = Number($("wl").value);
    if (Number.isFinite(w) && Number.isFinite(l) && w > 0) setWindow(l - w / 2, l + w / 2);
  }

  // -- running: progress, stop -------------------------------------------------------------------------------
  function showWork() {
    $("work").className = state.busy ? "" : "idle";
    $("stop").disabled = !state.busy;
    const bar = $("progress");
    const max = state.total || state.slices;  // the walk's extent once the session reports it, else the axis
    if (state.busy && state.frames > 0 && max) { bar.max = max; bar.value = Math.min(state.frames, max); }
    else bar.removeAttribute("value");  // indeterminate until the walk's extent is known
  }

  async function stop() {
    if (!state.id || !state.busy) return;
    try { await api(`/api/sessions/${state.id}/cancel`, { method: "POST" }); say("stopping…"); }
    catch (e) { say(e.message, true); }
  }

  async function afterEdit(change) {  // lastChange is set once the label map and the markers are drawn
    await refreshLabels();
    await refreshPrompts();
    state.lastChange = change;
    const where = !change.frames ? "nothing changed" : state.flat ? "the image"
      : `${isVideo() ? "frames" : "slices"} ${change.frames[0]}–${change.frames[1]}`;
    const which = change.candidates ? `candidate ${change.candidate + 1} of ${change.candidates} (C: next), ` : "";
    say(`${which}done in ${(change.seconds || 0).toFixed(1)} s: ${where}`);
  }

  async function edit(path, body) {
    if (body && body.type) {  // the prompt shows as a marker at once, while the model runs
      state.prompts.push(Object.assign({ label: body.object }, body.type === "box"
        ? { box: body.box, slice: body.slice, frame: body.slice }
        : { point: body.point, positive: body.positive, frame: body.point[2] }));
      drawMarks();
      say("segmenting…");
    }
    try {
      const change = await api(path, body === undefined ? { method: "POST" }
        : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      if (path.endsWith("/undo") || path.endsWith("/redo")) await syncObjects();
      await afterEdit(change);
    } catch (e) {
      if (e.kind === "Cancelled") { state.stopped = true; say("stopped: the object is as it was before this prompt"); }
      else say(e.message, true);
      if (state.id) refreshPrompts().catch(() => {});  // the refused or stopped prompt's marker goes
      if (state.id && preview.painted && e.kind !== "Cancelled" && !isVideo()) refreshLabels().catch(() => {});
    }
  }
  function tool() { return document.querySelector('input[name="tool"]:checked').value; }

  function setMouse() {
    if (!nv) return;
    nv.setMouseEventConfig({ leftButton: { primary: tool() === "look" ? DRAG_MODE.crosshair : DRAG_MODE.callbackOnly },
      rightButton: DRAG_MODE.windowing, centerButton: DRAG_MODE.pan });
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
    if (e.type === "busy") {
      state.busy += 1; state.frames = 0; state.total = null; state.slices = e.slices || null; $("frames").textContent = "";
      preview.live = !isVideo(); preview.painted = false;
    }
    else if (e.type === "total") state.total = Math.max(e.frames, state.frames) || null;
    else if (e.type === "frame") {
      state.frames += 1; $("frames").textContent = `${state.frames} ${isVideo() ? "frames" : "slices"}`;
      if (preview.live) fetchPreview();
      else if (isVideo()) video.written(e.index);  // the run's frame e.index is done: shown live if on screen
    }
    else if (e.type === "idle") {
      state.busy = Math.max(0, state.busy - 1); preview.live = false;
      if (e.stopped && preview.painted && !isVideo()) refreshLabels().catch((err) => say(err.message, true));  // the preview goes
      if (isVideo() && state.id) video.refresh().catch(() => {});  // a stopped or failed run's live frames go
    }
    else if (e.type === "closed") say("the session was closed", true);
    showWork();
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
      const created = await api("/api/sessions", { method: "POST", body: form }), g = created.geometry;
      const wasFlat = state.flat;
      Object.assign(state, { id: created.id, lease: created.lease, geometry: g, objects: [], active: null,
        labels: null, prompts: [], hidden: new Set(), stats: {}, flat: g.is_2d });
      preview.after = 0;  // entry numbers are the session's own
      layout(g, wasFlat);
      if (g.video) {  // frames come one at a time from the server (static/video.js); Niivue is not used
        while (nv.volumes.length) nv.removeVolume(nv.volumes[0]);
        state.labels = null;
        listen(state.id);
        await addObject();
        await video.open(g);
        say(`${file.name}: video ${g.size[0]} × ${g.size[1]}, ${g.frames} frames at ${g.fps.toFixed(3)} fps. Draw a box on a frame.`);
        return;
      }
      const colour = g.is_2d && g.colour;
      await nv.loadVolumes([{ url: `/api/sessions/${state.id}/image${colour ? "?colour=true" : ""}`, name: "image.nii.gz",
        headers: authHeaders() }]);
      $("download-seg").hidden = !g.dicom_seg;  // only for images uploaded as a DICOM series
      if (!colour) { presets(g.modality); windowPreset(); }
      listen(state.id);
      await addObject();
      await refreshLabels();  // an empty label map for the live preview to paint into
      updateSlices();
      if (g.is_2d) {
        const shown = colour ? "in colour" : "grey";
        say(`${file.name}: 2D image ${g.size[0]} × ${g.size[1]} pixels, shown ${shown}. Draw a box or click.`);
      } else say(`${file.name}: ${g.size.join(" × ")} voxels, ${g.modality || "?"}. Draw a box on a slice.`);
    } catch (e) { say(e.message, true); }
  }

  function layout(g, wasFlat) {  // one view for a 2D image; the 3D layout back for a volume after one
    const flat = g.is_2d;
    document.body.classList.toggle("two-d", flat);
    document.body.classList.toggle("video", Boolean(g.video));
    $("video-panel").hidden = !g.video;
    $("views").hidden = flat || Boolean(g.video);
    $("slices").hidden = flat || Boolean(g.video);
    $("windowing").hidden = flat && g.colour || Boolean(g.video);
    $("download-png").hidden = !flat;
    $("download").textContent = flat ? "NIfTI (one slice)" : "NIfTI";
    nv.opts.isOrientationTextVisible = !flat;  // R / A letters say nothing about a picture
    if (flat) {
      state.view = 0;
      nv.setRadiologicalConvention(true);  // RAS x runs against the columns: column 0 on the left
      nv.setSliceType(SLICE_TYPE.AXIAL);
    } else if (wasFlat) {
      nv.setRadiologicalConvention($("radiological").checked);
      nv.setSliceType(SLICE_TYPE.MULTIPLANAR);
    }
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

  function setView(view) {
    if (!nv) return;
    nv.setSliceType(view);
    if (view < 3) state.view = view;
    drawMarks();
  }

  function keys(e) {  // the page's shortcuts (listed in the Keys panel); typing in a field is left alone
    const target = e.target, typing = target && (target.tagName === "INPUT" && target.type !== "range" && target.type !== "radio"
      && target.type !== "checkbox" || target.tagName === "SELECT" || target.tagName === "TEXTAREA");
    if (typing) return;
    const ctrl = e.ctrlKey || e.metaKey, key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const pick = (value) => { document.querySelector(`input[name="tool"][value="${value}"]`).checked = true; setMouse(); };
    const actions = {
      b: () => pick("box"), p: () => pick("add"), n: () => pick("remove"), l: () => pick("look"),
      c: () => nextCandidate(), ArrowUp: () => step(1), ArrowDown: () => step(-1), PageUp: () => step(5),
      PageDown: () => step(-5), Escape: () => stop(), " ": () => isVideo() && video.play(),
    };
    let action = null;
    if (ctrl && key === "z") action = () => (e.shiftKey ? $("redo") : $("undo")).click();
    else if (ctrl && key === "y") action = () => $("redo").click();
    else if (!ctrl && !e.altKey && actions[key]) action = actions[key];
    if (!action) return;
    e.preventDefault();
    e.stopPropagation();  // Niivue's own keys (view mode, clip plane) do not run as well
    action();
  }

  async function nextCandidate() {
    if (!state.id || state.active === null) return;
    const info = sliceInfo(), axis = state.geometry.axis;
    const view = info.find((s) => s.axis === "ijk"[axis]);
    const slice = view ? view.index : nativeVoxel(crosshairVox())[axis];
    await edit(`/api/sessions/${state.id}/objects/${state.active}/candidate`, { slice });
  }

  async function start() {
    $("open").onclick = open;
    $("addobj").onclick = () => (state.id ? addObject().catch((e) => say(e.message, true)) : say("open a volume first", true));
    const downloads = { download: ["", "labelmap.nii.gz"], "download-seg": ["?format=dicom-seg", "labelmap.dcm"],
      "download-png": ["?format=png", "mask.png"],
      "download-slicer": ["?format=seg-nrrd", "labelmap.seg.nrrd"] };
    for (const [id, [query, name]] of Object.entries(downloads)) {
      $(id).onclick = (ev) => { ev.preventDefault(); if (state.id) download(`/api/sessions/${state.id}/labelmap${query}`, name); };
    }
    const videoDownloads = { "download-npz": ["/labelmap?format=npz", "masks.npz"],
      "download-pngzip": ["/labelmap?format=png-zip", "masks.zip"], "download-overlay": ["/overlay", "overlay.mp4"] };
    for (const [id, [path, name]] of Object.entries(videoDownloads)) {
      $(id).onclick = (ev) => { ev.preventDefault(); if (state.id) download(`/api/sessions/${state.id}${path}`, name); };
    }
    $("download-prompts").onclick = (ev) => {
      ev.preventDefault();
      if (state.id) download(`/api/sessions/${state.id}/prompts`, state.prompts.some((p) => p.mask) ? "prompts.zip" : "prompts.json");
    };
    $("token").onchange = () => { if ($("token").value) api("/api/login", { method: "POST" }).catch((e) => say(e.message, true)); };
    $("undo").onclick = () => state.id && edit(`/api/sessions/${state.id}/undo`);
    $("redo").onclick = () => state.id && edit(`/api/sessions/${state.id}/redo`);
    $("candidate").onclick = () => nextCandidate();
    $("stop").onclick = stop;
    $("window").onchange = windowPreset;
    $("ww").onchange = typedWindow;
    $("wl").onchange = typedWindow;
    $("radiological").onchange = () => { if (nv) { nv.setRadiologicalConvention($("radiological").checked); drawMarks(); } };
    $("opacity").oninput = () => { if (isVideo()) recolour(); else if (state.labels) nv.setOpacity(nv.volumes.indexOf(state.labels), Number($("opacity").value)); };
    for (const b of document.querySelectorAll("button[data-view]")) b.onclick = () => setView(Number(b.dataset.view));
    for (const row of document.querySelectorAll(".slice")) {
      row.querySelector("input").oninput = (ev) => { if (nv && nv.volumes.length) setSlice(Number(row.dataset.view), Number(ev.target.value)); };
    }
    for (const r of document.querySelectorAll('input[name="tool"]')) r.onchange = setMouse;
    video = window.volsamVideo({ state, request, say, edit, colour, tool, shown: () => renderObjects() });
    document.addEventListener("keydown", keys, true);
    showWork();
    if (!Niivue) { say("the viewer did not load (static/vendor/niivue.umd.js missing: run `make install`)", true); return; }
    // "All": three planes and a 3D rendering (no empty quadrant); wheel up goes to the next slice toward
    // superior / anterior / right, as in 3D Slicer and ITK-SNAP; the crosshair is drawn by drawMarks
    nv = new Niivue({ sliceType: SLICE_TYPE.MULTIPLANAR, multiplanarShowRender: SHOW_RENDER.ALWAYS,
      dragAndDropEnabled: false, logLevel: "warn", loadingText: "", invertScrollDirection: true,
      crosshairWidth: 0, isRadiologicalConvention: false,
      multiplanarPadPixels: 6, textHeight: 0.05, viewModeHotKey: "", clipPlaneHotKey: "", keyDebounceTime: 0 });
    await nv.attachToCanvas($("gl"));
    nv.onDragRelease = (p) => { onRelease(p); };
    nv.onLocationChange = () => { updateSlices(); drawMarks(); };
    nv.onIntensityChange = () => showWindow();
    $("gl").addEventListener("mouseup", () => setTimeout(showWindow, 0));  // after a right-drag's last step
    const draw = nv.drawScene.bind(nv);
    nv.drawScene = (...args) => { const out = draw(...args); drawMarks(); return out; };
    $("gl").addEventListener("mousemove", (e) => {  // the view under the mouse is the one ↑ ↓ move
      const n = nv.tileIndex(e.offsetX * nv.uiData.dpr, e.offsetY * nv.uiData.dpr);
      if (n >= 0 && nv.screenSlices[n].axCorSag <= 2) state.view = nv.screenSlices[n].axCorSag;
    });
    setMouse();
    rubberBand();
  }

  window.volsam = { state, get nv() { return nv; }, get video() { return video; }, nativeVoxel, rasVoxel, canvasPoint, goTo, sliceInfo, setSlice,
    paintPreview };
  start();
})();
