// The page: picks, drops or snaps an image, shows it, and renders the worker's top-5 as bars.
// The model URL comes from ?model= (default: the package's shipped model), the threads per image from
// ?threads= (default 1; more need this page to be cross-origin isolated, which serve.mjs's headers make it).
const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
const model = query.get('model') ?? '../../models/vim-fmnist.w8a8.vimq';
const threads = query.get('threads') ?? '1';
const worker = new Worker(new URL(`./worker.js?model=${encodeURIComponent(new URL(model, location.href))}&threads=${encodeURIComponent(threads)}`,
  import.meta.url), { type: 'module' });

let nextId = 0;
const pending = new Map();
let ready;
const whenReady = new Promise((resolve) => { ready = resolve; });

worker.onmessage = ({ data }) => {
  if (data.type === 'ready') {
    const isolation = self.crossOriginIsolated ? 'cross-origin isolated' : 'not isolated';
    status(`Model ready: ${data.info.labels.length} classes, ${data.info.config.imageSize}px input, ${threads} thread${threads === '1' ? '' : 's'} (${isolation}).`);
    document.body.dataset.ready = 'true';
    ready();
  } else if (data.type === 'error' && data.id === undefined) {
    status(data.message, true);
  } else {
    pending.get(data.id)?.(data);
    pending.delete(data.id);
  }
};

function status(text, error = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
}

function render(top5) {
  $('results').replaceChildren(...top5.map(({ label, score }) => {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.textContent = label;
    const value = document.createElement('span');
    value.className = 'score';
    value.textContent = `${(score * 100).toFixed(1)}%`;
    const bar = document.createElement('div');
    bar.className = 'bar';
    const fill = document.createElement('span');
    fill.style.width = `${Math.max(score * 100, 0.5)}%`;
    bar.append(fill);
    li.append(name, value, bar);
    return li;
  }));
}

/** Sends an image (a File/Blob or an ImageBitmap) to the worker; the page stays responsive meanwhile. */
async function classify(image, name) {
  await whenReady;
  status(`Classifying ${name}…`);
  const id = nextId++;
  const reply = new Promise((resolve) => pending.set(id, resolve));
  worker.postMessage({ id, image }, image instanceof ImageBitmap ? [image] : []);
  const result = await reply;
  if (result.type === 'error') {
    $('results').replaceChildren();
    status(`${name}: ${result.message}`, true);
  } else {
    render(result.top5);
    status(`${name}: ${result.ms.toFixed(0)} ms in the worker.`);
  }
  // For tests and tools: the last result, full precision.
  document.body.dataset.result = JSON.stringify({ name, ...result });
}

function show(file) {
  const url = URL.createObjectURL(file);
  $('preview').onload = () => URL.revokeObjectURL(url);
  $('preview').src = url;
  $('preview').hidden = false;
  $('video').hidden = true;
  return classify(file, file.name || 'image');
}

$('file').addEventListener('change', () => { const f = $('file').files?.[0]; if (f) show(f); $('file').value = ''; });
$('pick').addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); $('file').click(); } });
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const file = [...(e.dataTransfer?.files ?? [])].find((f) => f.type.startsWith('image/')) ?? e.dataTransfer?.files[0];
  if (file) show(file);
});

// Optional camera: first click starts the preview, the next one classifies the current frame.
if (navigator.mediaDevices?.getUserMedia) {
  const camera = $('camera');
  camera.hidden = false;
  camera.addEventListener('click', async () => {
    const video = $('video');
    if (video.hidden || !video.srcObject) {
      try {
        video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
      } catch (err) {
        status(`Camera unavailable: ${err.message}`, true);
        return;
      }
      await video.play();
      video.hidden = false;
      $('preview').hidden = true;
      camera.textContent = 'Classify this frame';
      return;
    }
    classify(await createImageBitmap(video), 'camera frame');
  });
}
