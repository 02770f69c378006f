// The viewer page: one WebSocket to /ws (protocol: signattn_driver/viewer/protocol.py).
// Pictures are acknowledged once on screen; the server sends the next one only then, so this
// page always shows the newest frame. No build step, no outside resources.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const settings = {trace_s: 30, stale_s: 3};
  const trace = [];              // {t (s, page clock), stamp, u, wheel}
  const uByStamp = new Map();    // 'sec.nanosec' -> u, for the commands in the trace
  const lastAt = {frame: 0, status: 0};
  let shownStamp = null;
  let framesShown = 0;
  let socket = null;

  const now = () => performance.now() / 1000;

  function setText(id, text) { $(id).textContent = text; }

  function setConnection(text, cls) {
    const el = $('connection');
    el.textContent = text;
    el.className = cls;
  }

  function connect() {
    socket = new WebSocket(`ws://${location.host}/ws`);
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => setConnection('connected', 'ok');
    socket.onclose = () => {
      setConnection('viewer not reachable: retrying', 'bad');
      setTimeout(connect, 1000);
    };
    socket.onmessage = (event) => {
      if (typeof event.data === 'string') {
        onText(JSON.parse(event.data));
      } else {
        onPicture(event.data);
      }
    };
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  // OpenCV's COLORMAP_JET, as the node's overlays: 0 blue .. 1 dark red.
  const jet = (v) => [3, 2, 1].map(
    (k) => 255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - k))));
  const mapCanvas = document.createElement('canvas');

  // A raw attention map (attention_raw:=true) over the camera picture, as the node would draw
  // it: peak-normalised, jet colours, blended at 0.5, smoothed by the upscaling.
  function drawMap(ctx, map, width, height) {
    mapCanvas.width = map.width;
    mapCanvas.height = map.height;
    const mapCtx = mapCanvas.getContext('2d');
    const pixels = mapCtx.createImageData(map.width, map.height);
    const peak = Math.max(...map.values) || 1;
    map.values.forEach((value, i) => {
      const [r, g, b] = jet(Math.max(0, value) / peak);
      pixels.data.set([r, g, b, 255], 4 * i);
    });
    mapCtx.putImageData(pixels, 0, 0);
    ctx.save();
    ctx.globalAlpha = 0.5;
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(mapCanvas, 0, 0, width, height);
    ctx.restore();
  }

  function onPicture(buffer) {
    const length = new DataView(buffer).getUint32(0);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
    const canvas = $(header.stream);
    if (!canvas) return;
    const blob = new Blob([new Uint8Array(buffer, 4 + length)], {type: 'image/jpeg'});
    createImageBitmap(blob).then((bitmap) => {
      if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
        canvas.width = bitmap.width;
        canvas.height = bitmap.height;
      }
      const ctx = canvas.getContext('2d');
      ctx.drawImage(bitmap, 0, 0);
      bitmap.close();
      if (header.map) drawMap(ctx, header.map, canvas.width, canvas.height);
      canvas.dataset.overlay = header.map ? 'page' : 'node';   // who drew the heat map
      shown(header);
    }, () => shown(header));   // an undecodable picture: ask for the next one all the same
  }

  function shown(header) {
    if (header.stream === 'attention') {
      shownStamp = header.stamp;
      framesShown += 1;
      lastAt.frame = now();
      setText('frame-stamp', header.stamp);
      setText('frame-count', String(framesShown));
      showFrameCommand();
    } else {
      $('contribution-box').hidden = false;
      setText('contribution-stamp', header.stamp);
    }
    send({ack: header.stream});
  }

  function showFrameCommand() {
    const el = $('frame-u');
    const u = shownStamp === null ? undefined : uByStamp.get(shownStamp);
    el.textContent = u === undefined ? 'not received' : u.toFixed(5);
    el.dataset.u = u === undefined ? '' : String(u);
    el.dataset.stamp = shownStamp || '';
  }

  function onText(message) {
    if (message.type === 'hello') {   // (re)connected: the viewer resends its kept trace
      trace.length = 0;
      uByStamp.clear();
      settings.trace_s = message.trace_s;
      settings.stale_s = message.stale_s;
      setText('trace-s', String(message.trace_s));
      setText('vehicle', message.vehicle);
    } else if (message.type === 'commands') {
      onCommands(message.items);
    } else if (message.type === 'status') {
      onStatus(message);
    } else if (message.type === 'route') {
      setText('route', message.name);
    }
  }

  function onCommands(items) {
    const t = now();
    for (const [stamp, u, wheel] of items) {
      trace.push({t, stamp, u, wheel});
      uByStamp.set(stamp, u);
    }
    while (trace.length && t - trace[0].t > settings.trace_s) {
      uByStamp.delete(trace.shift().stamp);
    }
    const last = trace[trace.length - 1];
    if (!last) return;
    setText('command-u', last.u.toFixed(5));
    setText('command-wheel', last.wheel.toFixed(1));
    // + = left (REP-103): a left turn turns the wheel counter-clockwise on screen.
    $('wheel-rim').style.transform = `rotate(${-last.wheel}deg)`;
    if (shownStamp !== null && $('frame-u').dataset.stamp === shownStamp &&
        $('frame-u').dataset.u === '') {
      showFrameCommand();
    }
  }

  const fixed = (value, digits) => (value === null || value === undefined ?
    'n/a' : value.toFixed(digits));

  function onStatus(status) {
    lastAt.status = now();
    const level = $('status-level');
    level.textContent = status.level;
    level.className = `level ${status.level}`;
    setText('status-rate', status.rate_hz === null ? 'n/a' : `${fixed(status.rate_hz, 1)} Hz`);
    setText('status-latency',
      `${fixed(status.latency_p50_ms, 2)} / ${fixed(status.latency_p99_ms, 2)} ms`);
    setText('status-drops',
      `${status.frames_received} / ${status.frames_dropped} / ${status.frames_rejected}`);
    setText('status-device', status.device || 'n/a');
    setText('status-message', status.message);
  }

  function drawTrace() {
    const canvas = $('trace');
    const ctx = canvas.getContext('2d');
    const w = canvas.width;
    const h = canvas.height;
    const t = now();
    ctx.clearRect(0, 0, w, h);
    let scale = 0.01;
    for (const p of trace) scale = Math.max(scale, Math.abs(p.u));
    scale = Math.pow(10, Math.ceil(Math.log10(scale) * 4) / 4);   // steps of 10^(1/4)
    setText('trace-scale', scale.toPrecision(2));
    ctx.strokeStyle = '#444';
    ctx.beginPath();
    ctx.moveTo(0, h / 2);
    ctx.lineTo(w, h / 2);
    ctx.stroke();
    ctx.strokeStyle = '#ff8c1a';
    ctx.lineWidth = 2;
    ctx.beginPath();
    trace.forEach((p, i) => {
      const x = w * (1 - (t - p.t) / settings.trace_s);
      const y = h / 2 - (p.u / scale) * (h / 2 - 4);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }

  function checkStale() {
    const t = now();
    const frameAge = t - lastAt.frame;
    setText('frame-age', lastAt.frame && frameAge > settings.stale_s ?
      `(no new frame for ${frameAge.toFixed(0)} s)` : '');
    const statusAge = t - lastAt.status;
    if (lastAt.status && statusAge > settings.stale_s) {
      const level = $('status-level');
      level.textContent = 'MISSING';
      level.className = 'level MISSING';
      setText('status-message', `no /diagnostics from drive_node for ${statusAge.toFixed(0)} s: ` +
        'is the node running?');
      setText('status-rate', 'n/a');
    }
  }

  setInterval(() => { drawTrace(); checkStale(); }, 200);
  connect();
})();
