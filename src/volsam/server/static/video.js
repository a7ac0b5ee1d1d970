// volsam web page, video sessions (a video or DICOM cine upload: geometry.video). The server reads frames on
// demand, so the page asks for one frame at a time (GET .../frames/{n}, a PNG) and that frame's labels
// (GET .../labelmap/frames/{n}, grey PNG of label values), with the token and lease in headers; it never holds
// the video. A 2D canvas shows the frame, the masks over it (object colours, the overlay opacity) and the
// prompts of that frame; a box (drag) or a ± click on any frame is a prompt with slice / point frame = the
// frame, and the server tracks through the video (progress: the page's bar, one event a frame). While a run
// goes, the server shows each frame the run has written with its new mask (GET .../labelmap/frames/{n}; frames
// not reached yet keep the state before the run): scrubbing during a run shows the frames done so far, and the
// frame on screen is fetched again when its `frame` event (index = the frame written) comes.
"use strict";
window.volsamVideo = function (env) {  // env: state, request, say, edit, colour, tool, shown (a frame was drawn)
  const $ = (id) => document.getElementById(id);
  const canvas = $("video");
  const v = { frame: 0, count: 0, picture: null, labels: null, playing: false, token: 0, fps: 25 };
  // The pictures of the frames shown and of the next few, fetched ahead (a frame's picture never changes; its
  // labels do, so they are always fetched anew): scrubbing forward and playing find the picture already here.
  const AHEAD = 3, KEPT = 12;
  const pictures = new Map();  // "session:frame" -> Promise of its ImageBitmap, oldest first

  function fit() {  // where the frame sits on the canvas: scale and offset (aspect kept, centred)
    const w = canvas.width, h = canvas.height, g = env.state.geometry;
    const s = Math.min(w / g.size[0], h / g.size[1]);
    return { s, x: (w - s * g.size[0]) / 2, y: (h - s * g.size[1]) / 2 };
  }

  function toPixel(e) {  // canvas mouse position -> frame pixel (x, y), clamped
    const f = fit(), g = env.state.geometry, dpr = window.devicePixelRatio || 1;
    const x = Math.floor((e.offsetX * dpr - f.x) / f.s), y = Math.floor((e.offsetY * dpr - f.y) / f.s);
    return [Math.max(0, Math.min(g.size[0] - 1, x)), Math.max(0, Math.min(g.size[1] - 1, y))];
  }

  function colourLabels(bitmap) {  // grey label PNG -> RGBA of the objects' colours (hidden ones left out)
    const off = new OffscreenCanvas(bitmap.width, bitmap.height), ctx = off.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    const img = ctx.getImageData(0, 0, bitmap.width, bitmap.height), d = img.data;
    const alpha = Math.round(255 * Number($("opacity").value));
    const counts = {};
    for (let n = 0; n < d.length; n += 4) {
      const label = d[n];
      if (!label || env.state.hidden.has(label)) { d[n + 3] = 0; continue; }
      counts[label] = (counts[label] || 0) + 1;
      const [r, g, b] = env.colour(label);
      d[n] = r; d[n + 1] = g; d[n + 2] = b; d[n + 3] = alpha;
    }
    ctx.putImageData(img, 0, 0);
    return { canvas: off, counts };
  }

  function draw(rubber = null) {
    if (!env.state.geometry || !env.state.geometry.video) return;  // nothing open yet, or not a video
    const ctx = canvas.getContext("2d"), f = fit(), g = env.state.geometry;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingEnabled = false;
    if (v.picture) ctx.drawImage(v.picture, f.x, f.y, f.s * g.size[0], f.s * g.size[1]);
    if (v.labels) ctx.drawImage(v.labels.canvas, f.x, f.y, f.s * g.size[0], f.s * g.size[1]);
    ctx.lineWidth = 2;
    for (const p of env.state.prompts) {  // the prompts of this frame stay as markers until undone
      if (p.frame !== v.frame) continue;
      const [r, gg, b] = env.colour(p.label);
      ctx.strokeStyle = `rgb(${r},${gg},${b})`;
      if (p.box) {
        const [x0, y0, x1, y1] = p.box;
        ctx.strokeRect(f.x + f.s * x0, f.y + f.s * y0, f.s * (x1 - x0 + 1), f.s * (y1 - y0 + 1));
      } else if (p.point) {
        ctx.fillStyle = p.positive === false ? "#f44" : "#4f4";
        ctx.beginPath();
        ctx.arc(f.x + f.s * (p.point[0] + 0.5), f.y + f.s * (p.point[1] + 0.5), 5, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      }
    }
    if (rubber) {
      ctx.strokeStyle = "#ff0";
      const [a, b] = rubber;
      ctx.strokeRect(f.x + f.s * Math.min(a[0], b[0]), f.y + f.s * Math.min(a[1], b[1]),
        f.s * (Math.abs(b[0] - a[0]) + 1), f.s * (Math.abs(b[1] - a[1]) + 1));
    }
    $("frameno").textContent = `frame ${v.frame} / ${v.count - 1} · ${(v.frame / v.fps).toFixed(2)} s`;
    $("scrub").value = String(v.frame);
  }

  async function bitmap(path) {
    return createImageBitmap(await (await env.request(path)).blob());
  }

  function picture(id, n) {  // frame n's picture: from the prefetched ones, else fetched now (and kept)
    const key = `${id}:${n}`;
    if (!pictures.has(key)) {
      pictures.set(key, bitmap(`/api/sessions/${id}/frames/${n}`).catch((e) => { pictures.delete(key); throw e; }));
      while (pictures.size > KEPT) pictures.delete(pictures.keys().next().value);
    }
    return pictures.get(key);
  }

  function prefetch(id, n) {  // the next frames' pictures, one request after the other (the server reads in order)
    let chain = Promise.resolve();
    for (let k = n + 1; k <= Math.min(v.count - 1, n + AHEAD); k++) {
      chain = chain.then(() => (id === env.state.id ? picture(id, k) : null)).catch(() => null);
    }
  }

  async function go(frame) {  // show frame n: its picture and its labels, fetched now (only the latest wins)
    const n = Math.max(0, Math.min(v.count - 1, Math.round(frame)));
    const token = ++v.token, id = env.state.id;
    const [pic, labels] = await Promise.all([picture(id, n),
      bitmap(`/api/sessions/${id}/labelmap/frames/${n}?t=${Date.now()}`)]);
    if (token !== v.token || id !== env.state.id) return;  // a later request took over
    Object.assign(v, { frame: n, picture: pic, labels: colourLabels(labels) });
    canvas.dataset.frame = String(n);
    canvas.dataset.pixels = JSON.stringify(v.labels.counts);  // object pixels on this frame (tests, panel)
    draw();
    env.shown();
    prefetch(id, n);
  }

  async function play() {
    v.playing = !v.playing;
    $("play").textContent = v.playing ? "Pause" : "Play";
    while (v.playing && env.state.id) {
      const t0 = performance.now();
      const next = v.frame + 1 >= v.count ? 0 : v.frame + 1;
      try { await go(next); } catch (e) { v.playing = false; env.say(e.message, true); }
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 / v.fps - (performance.now() - t0))));
    }
    $("play").textContent = "Play";
  }

  function mouse() {
    let start = null;
    canvas.addEventListener("mousedown", (e) => { if (e.button === 0 && env.state.geometry && env.state.geometry.video) start = toPixel(e); });
    canvas.addEventListener("mousemove", (e) => { if (start && env.tool() === "box") draw([start, toPixel(e)]); });
    canvas.addEventListener("mouseup", async (e) => {
      if (!start) return;
      const a = start, b = toPixel(e);
      start = null;
      const state = env.state;
      if (state.active === null) { env.say("add an object first", true); draw(); return; }
      const click = a[0] === b[0] && a[1] === b[1];
      if (env.tool() === "box") {
        if (click) { draw(); return; }
        await env.edit(`/api/sessions/${state.id}/prompts`, { object: state.active, type: "box", slice: v.frame,
          box: [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])] });
      } else if (click && env.tool() !== "look") {
        await env.edit(`/api/sessions/${state.id}/prompts`, { object: state.active, type: "point",
          point: [b[0], b[1], v.frame], positive: env.tool() === "add" });
      }
    });
    canvas.addEventListener("wheel", (e) => { e.preventDefault(); go(v.frame + (e.deltaY < 0 ? 1 : -1)); }, { passive: false });
    new ResizeObserver(() => {
      const dpr = window.devicePixelRatio || 1;
      canvas.width = Math.max(1, Math.round(canvas.clientWidth * dpr));
      canvas.height = Math.max(1, Math.round(canvas.clientHeight * dpr));
      draw();
    }).observe(canvas);
  }

  async function open(g) {
    v.playing = false;
    pictures.clear();
    Object.assign(v, { frame: 0, count: g.frames, fps: g.fps || 25, picture: null, labels: null });
    $("scrub").max = String(g.frames - 1);
    $("scrub").value = "0";
    await go(0);
  }

  $("scrub").oninput = (e) => { v.playing = false; go(Number(e.target.value)).catch((err) => env.say(err.message, true)); };
  $("play").onclick = () => play();
  mouse();
  return {
    open,
    play,
    step: (delta) => go(v.frame + delta).catch((e) => env.say(e.message, true)),
    refresh: () => go(v.frame),  // after an edit: this frame's labels again
    // a `frame` event of a run: frame n was written; the frame on screen shows its new mask (others on scrubbing)
    written: (n) => (env.state.geometry && env.state.geometry.video && n === v.frame && !v.playing
      ? go(v.frame).catch(() => {}) : null),
    draw: () => draw(),
    get frame() { return v.frame; },
    pixels: (label) => (v.labels ? v.labels.counts[label] || 0 : 0),  // the object's pixels on the frame shown
    get playing() { return v.playing; },
  };
};
