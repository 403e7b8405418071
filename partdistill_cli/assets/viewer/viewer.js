// The partdistill segmentation viewer (the page NAME.viewer.html; built by partdistill_cli/viewer.py).
//
// Reads the result from the JSON block #pd-data: positions (float32, the input's coordinates), triangle
// indices (meshes), per-face or per-point labels (stored as label + 1, 0 = unlabeled) and confidences (uint8,
// value / 255), each a base64 little-endian buffer. Each legend entry (a part, or "unlabeled") becomes one
// three.js object, so hiding a part is hiding its object and picking only sees visible parts.
//
// window.partdistillViewer is the page's small scripting interface (used by the tests and handy in the
// browser console): ready, loadMs, error, parts, setPartVisible(i, on), setMode("parts" | "confidence"),
// project(i) -> {x, y, visible} (client pixels of face centroid / point i), pickAt(x, y) -> info or null.
(function () {
  "use strict";

  const api = { ready: false, loadMs: null, error: null, frames: 0 };
  window.partdistillViewer = api;

  function fail(message) {
    api.error = message;
    const box = document.getElementById("pd-error");
    box.textContent = message;
    box.hidden = false;
  }

  let T;
  let data;
  try {
    T = window.PDThree;
    data = JSON.parse(document.getElementById("pd-data").textContent);
  } catch (err) {
    fail("cannot read the page's data: " + err.message);
    return;
  }

  const DTYPES = { float32: Float32Array, uint32: Uint32Array, uint16: Uint16Array, uint8: Uint8Array };

  function decode(field) {
    const text = atob(field.b64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return new DTYPES[field.dtype](bytes.buffer);
  }

  const isMesh = data.kind === "mesh";
  const positions = decode(data.positions);
  const indices = isMesh ? decode(data.indices) : null;
  const labels = decode(data.labels);
  const confidence = decode(data.confidence);
  const nElements = labels.length;
  const legend = data.legend; // one entry per part, then "unlabeled" when present: {name, color, share, count}
  const nParts = data.parts.length;

  // Legend entry of a stored label (label + 1; 0 is unlabeled, the entry after the parts).
  const entryOf = (stored) => (stored === 0 ? nParts : stored - 1);

  // Vertex colours are linear in three.js; the palette is sRGB.
  function linear(rgb) {
    const c = new T.Color().setRGB(rgb[0] / 255, rgb[1] / 255, rgb[2] / 255, T.SRGBColorSpace);
    return [c.r, c.g, c.b];
  }

  // Confidence heat map: matplotlib's viridis (perceptually even, readable by the colour-blind), 256 steps.
  const HEAT_STOPS = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ];
  function heatSrgb(t) {
    const x = Math.min(Math.max(t, 0), 1) * (HEAT_STOPS.length - 1);
    const i = Math.min(Math.floor(x), HEAT_STOPS.length - 2);
    const f = x - i;
    return HEAT_STOPS[i].map((a, k) => a + f * (HEAT_STOPS[i + 1][k] - a));
  }
  const HEAT_LUT = Array.from({ length: 256 }, (_, v) => linear(heatSrgb(v / 255)));
  document.getElementById("pd-heatbar").style.background =
    "linear-gradient(to right, " + HEAT_STOPS.map((c) => `rgb(${c.join(",")})`).join(", ") + ")";

  // ---- geometry, one object per legend entry ----------------------------------------------------------
  const members = legend.map(() => []);
  for (let e = 0; e < nElements; e++) members[entryOf(labels[e])].push(e);

  let lo = [Infinity, Infinity, Infinity];
  let hi = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < positions.length; i += 3) {
    for (let k = 0; k < 3; k++) {
      lo[k] = Math.min(lo[k], positions[i + k]);
      hi[k] = Math.max(hi[k], positions[i + k]);
    }
  }
  if (positions.length === 0) lo = hi = [0, 0, 0];
  const center = new T.Vector3((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2);
  let radius = 0;
  for (let i = 0; i < positions.length; i += 3) {
    const dx = positions[i] - center.x;
    const dy = positions[i + 1] - center.y;
    const dz = positions[i + 2] - center.z;
    radius = Math.max(radius, dx * dx + dy * dy + dz * dz);
  }
  radius = Math.sqrt(radius) || 1;

  // Points as squares about 1.5 sample spacings wide (spacing of N points over a sphere's surface).
  const defaultPointSize = (1.5 * radius * Math.sqrt((4 * Math.PI) / Math.max(nElements, 1))) / Math.sqrt(2);
  let pointSize = defaultPointSize;

  const scene = new T.Scene();
  scene.background = new T.Color(0xffffff);
  const objects = members.map((elements, g) => {
    const n = elements.length;
    const perElement = isMesh ? 3 : 1;
    const xyz = new Float32Array(n * perElement * 3);
    for (let j = 0; j < n; j++) {
      for (let c = 0; c < perElement; c++) {
        const v = isMesh ? indices[3 * elements[j] + c] : elements[j];
        xyz.set(positions.subarray(3 * v, 3 * v + 3), 3 * (perElement * j + c));
      }
    }
    const geometry = new T.BufferGeometry();
    geometry.setAttribute("position", new T.BufferAttribute(xyz, 3));
    geometry.setAttribute("color", new T.BufferAttribute(new Float32Array(xyz.length), 3));
    let object;
    if (isMesh) {
      geometry.computeVertexNormals(); // not indexed: each triangle gets its own (flat) normal
      object = new T.Mesh(geometry, new T.MeshLambertMaterial({ vertexColors: true, side: T.DoubleSide }));
    } else {
      object = new T.Points(geometry, new T.PointsMaterial({ vertexColors: true, size: pointSize }));
    }
    object.userData = { entry: g, elements: Uint32Array.from(elements), perElement };
    object.visible = n > 0;
    scene.add(object);
    return object;
  });

  let mode = "parts";
  function paint(object) {
    const { entry, elements, perElement } = object.userData;
    const colors = object.geometry.getAttribute("color");
    const flat = linear(legend[entry].color);
    for (let j = 0; j < elements.length; j++) {
      const rgb = mode === "parts" ? flat : HEAT_LUT[confidence[elements[j]]];
      for (let c = 0; c < perElement; c++) colors.array.set(rgb, 3 * (perElement * j + c));
    }
    colors.needsUpdate = true;
  }
  objects.forEach(paint);

  // ---- renderer, camera, lights -------------------------------------------------------------------------
  const stage = document.getElementById("pd-stage");
  const canvas = document.getElementById("pd-canvas");
  let renderer;
  try {
    renderer = new T.WebGLRenderer({ canvas, antialias: true });
  } catch (err) {
    fail("this viewer needs WebGL, which this browser does not offer (" + err.message + ")");
    return;
  }
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));

  const UP = { x: [1, 0, 0], y: [0, 1, 0], z: [0, 0, 1] }[data.up] || [0, 1, 0];
  const up = new T.Vector3(...UP);
  // Viewed from the front-right and above, whichever axis is up: "front" is +z for y-up shapes and -y for
  // z-up (CAD) shapes.
  const front = data.up === "z" ? new T.Vector3(0, -1, 0) : new T.Vector3(0, 0, 1);
  const right = new T.Vector3().crossVectors(up, front);
  const homeDirection = front.clone().addScaledVector(right, 0.55).addScaledVector(up, 0.45).normalize();

  const camera = new T.PerspectiveCamera(35, 1, radius / 100, radius * 100);
  camera.up.copy(up);
  const controls = new T.OrbitControls(camera, canvas);
  controls.screenSpacePanning = true;
  // Keep the shape between the camera's clipping planes however far one zooms.
  controls.minDistance = radius / 20;
  controls.maxDistance = radius * 50;

  function home() {
    // Fit the bounding sphere within the narrower of the vertical and horizontal fields of view.
    const halfV = ((camera.fov / 2) * Math.PI) / 180;
    const halfH = Math.atan(Math.tan(halfV) * camera.aspect);
    const distance = (radius / Math.sin(Math.min(halfV, halfH))) * 1.05;
    controls.target.copy(center);
    camera.position.copy(center).addScaledVector(homeDirection, distance);
    controls.update();
    requestDraw();
  }

  // Three.js lights are physical: a light of intensity PI gives a surface facing it its full colour.
  scene.add(new T.HemisphereLight(0xffffff, 0x808080, Math.PI * 0.5));
  const headlight = new T.DirectionalLight(0xffffff, Math.PI * 0.6);
  scene.add(headlight);
  scene.add(headlight.target);

  function draw() {
    headlight.position.copy(camera.position).addScaledVector(camera.up, radius * 0.5);
    headlight.target.position.copy(controls.target);
    renderer.render(scene, camera);
    api.frames += 1;
    if (api.frames === 1) {
      // The browser begins the next frame only once this one is handed to the screen: the page is ready then.
      requestAnimationFrame(() => {
        api.loadMs = performance.now();
        api.ready = true;
      });
    }
  }
  let pending = false;
  function requestDraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      draw();
    });
  }
  controls.addEventListener("change", requestDraw);

  // Fit the drawing buffer to the stage; true if its size changed.
  function fit() {
    const w = Math.max(stage.clientWidth, 1);
    const h = Math.max(stage.clientHeight, 1);
    const size = renderer.getSize(new T.Vector2());
    if (size.x === w && size.y === h) return false;
    renderer.setSize(w, h, false);
    camera.aspect = w / h;
    camera.updateProjectionMatrix();
    return true;
  }
  // Observers report in the browser's rendering step, so a resized view is drawn in the same frame.
  new ResizeObserver(() => {
    if (fit()) draw();
  }).observe(stage);

  // ---- picking ----------------------------------------------------------------------------------------------
  const raycaster = new T.Raycaster();
  const ndc = new T.Vector2();

  function pickAt(clientX, clientY) {
    const rect = canvas.getBoundingClientRect();
    ndc.set(((clientX - rect.left) / rect.width) * 2 - 1, -((clientY - rect.top) / rect.height) * 2 + 1);
    raycaster.setFromCamera(ndc, camera);
    raycaster.params.Points.threshold = pointSize / 2;
    const hits = raycaster.intersectObjects(
      objects.filter((o) => o.visible),
      false,
    );
    if (!hits.length) return null;
    const hit = hits[0];
    const { entry, elements } = hit.object.userData;
    const element = elements[isMesh ? hit.faceIndex : hit.index];
    return { element, part: legend[entry].name, entry, confidence: confidence[element] / 255 };
  }

  function elementCenter(i) {
    if (!isMesh) return new T.Vector3(positions[3 * i], positions[3 * i + 1], positions[3 * i + 2]);
    const p = new T.Vector3();
    for (let c = 0; c < 3; c++) {
      const v = indices[3 * i + c];
      p.x += positions[3 * v] / 3;
      p.y += positions[3 * v + 1] / 3;
      p.z += positions[3 * v + 2] / 3;
    }
    return p;
  }

  function project(i) {
    const ndcPoint = elementCenter(i).project(camera);
    const rect = canvas.getBoundingClientRect();
    const x = rect.left + ((ndcPoint.x + 1) / 2) * rect.width;
    const y = rect.top + ((1 - ndcPoint.y) / 2) * rect.height;
    const inside = x >= rect.left && x < rect.right && y >= rect.top && y < rect.bottom && ndcPoint.z < 1;
    const hit = inside ? pickAt(x, y) : null;
    return { x, y, visible: hit !== null && hit.element === i };
  }

  const elementWord = isMesh ? "face" : "point";
  const tip = document.getElementById("pd-tip");
  const info = document.getElementById("pd-info");
  function describe(hit) {
    return `${hit.part} · confidence ${hit.confidence.toFixed(2)}`;
  }

  let pointer = null;
  let dragged = false;
  let hoverQueued = false;
  canvas.addEventListener("pointerdown", () => {
    dragged = false;
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (ev.buttons) {
      dragged = true;
      tip.hidden = true;
      return;
    }
    pointer = { x: ev.clientX, y: ev.clientY };
    if (hoverQueued) return;
    hoverQueued = true;
    requestAnimationFrame(() => {
      hoverQueued = false;
      const hit = pickAt(pointer.x, pointer.y);
      if (!hit) {
        tip.hidden = true;
        return;
      }
      tip.textContent = describe(hit);
      tip.dataset.element = hit.element;
      const rect = stage.getBoundingClientRect();
      tip.style.left = `${pointer.x - rect.left + 14}px`;
      tip.style.top = `${pointer.y - rect.top + 14}px`;
      tip.hidden = false;
    });
  });
  canvas.addEventListener("pointerleave", () => {
    tip.hidden = true;
  });
  canvas.addEventListener("click", (ev) => {
    if (dragged) return;
    const hit = pickAt(ev.clientX, ev.clientY);
    info.textContent = hit
      ? `${elementWord} ${hit.element}: ${describe(hit)}`
      : "click on the shape to read the part and the confidence there";
  });

  // ---- legend and controls ----------------------------------------------------------------------------------
  const list = document.getElementById("pd-legend");
  const isShown = legend.map(() => true);
  const items = legend.map((entry, g) => {
    const li = document.createElement("li");
    li.className = "pd-part";
    li.dataset.entry = g;
    li.tabIndex = 0;
    li.setAttribute("role", "switch");
    li.title = `${entry.count} ${elementWord}s; click: show/hide, shift+click: show only this part`;
    const swatch = document.createElement("span");
    swatch.className = "pd-swatch";
    swatch.style.background = `rgb(${entry.color.join(",")})`;
    const name = document.createElement("span");
    name.className = "pd-name";
    name.textContent = entry.name;
    const share = document.createElement("span");
    share.className = "pd-share";
    share.textContent = `${(100 * entry.share).toFixed(1)}%`;
    li.append(swatch, name, share);
    li.addEventListener("click", (ev) => {
      if (ev.shiftKey) legend.forEach((_, k) => setEntryVisible(k, k === g));
      else setEntryVisible(g, !isShown[g]);
    });
    li.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        setEntryVisible(g, !isShown[g]);
      }
    });
    list.append(li);
    return li;
  });

  function setEntryVisible(g, on) {
    isShown[g] = Boolean(on);
    objects[g].visible = isShown[g] && objects[g].userData.elements.length > 0;
    items[g].classList.toggle("off", !isShown[g]);
    items[g].setAttribute("aria-checked", String(isShown[g]));
    tip.hidden = true;
    requestDraw();
  }
  legend.forEach((_, g) => setEntryVisible(g, true));
  document.getElementById("pd-show-all").addEventListener("click", () => {
    legend.forEach((_, g) => setEntryVisible(g, true));
  });

  function setMode(m) {
    if (m !== "parts" && m !== "confidence") throw new Error(`unknown mode ${m}: parts or confidence`);
    mode = m;
    objects.forEach(paint);
    document.getElementById("pd-mode-" + m).checked = true;
    document.getElementById("pd-heat").hidden = m !== "confidence";
    requestDraw();
  }
  for (const m of ["parts", "confidence"]) {
    document.getElementById("pd-mode-" + m).addEventListener("change", () => setMode(m));
  }
  document.getElementById("pd-home").addEventListener("click", home);

  const sizeInput = document.getElementById("pd-point-size");
  if (isMesh) {
    document.getElementById("pd-point-size-row").hidden = true;
  } else {
    sizeInput.addEventListener("input", () => {
      pointSize = defaultPointSize * Math.pow(2, Number(sizeInput.value));
      objects.forEach((o) => {
        o.material.size = pointSize;
      });
      requestDraw();
    });
  }

  if (data.explain) {
    const panel = document.getElementById("pd-explain");
    const toggle = document.getElementById("pd-explain-toggle");
    const image = document.getElementById("pd-explain-image");
    image.src = data.explain;
    image.addEventListener("click", () => image.classList.toggle("pd-zoom"));
    panel.hidden = false;
    document.getElementById("pd-explain-row").hidden = false;
    toggle.addEventListener("click", () => {
      panel.hidden = !panel.hidden;
      toggle.textContent = panel.hidden ? "show the teacher's views" : "hide the teacher's views";
    });
  }

  Object.assign(api, {
    parts: legend.map((e) => e.name),
    setPartVisible: setEntryVisible,
    setMode,
    project,
    pickAt,
    home,
  });

  fit();
  home();
})();
