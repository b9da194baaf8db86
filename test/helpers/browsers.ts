// Browsers driven from Node, one launcher per engine behind one small interface (load a URL, evaluate a script,
// close), and the example page (examples/browser) driven through it: the host tests' answers on every engine and
// bench/speed.ts's browser rows come from the same code.
//   Chromium (V8)                /usr/bin/chromium through playwright-core (CDP), headless
//   Firefox (SpiderMonkey)       /usr/bin/firefox-esr through puppeteer-core (WebDriver BiDi), headless
//   WebKitGTK (JavaScriptCore)   MiniBrowser through WebKitWebDriver and selenium-webdriver, on its own Xvfb
//                                display (MiniBrowser has no headless mode)
// All three are Debian packages (scripts/install-test-deps.sh); nothing downloads a browser or a driver.
import { spawn, type ChildProcess } from 'node:child_process';
import { CHROMIUM, CHROMIUM_FLAGS, freePort, ROOT, waitFor, type TopPrediction } from './hosts.js';

export type Engine = 'chromium' | 'firefox' | 'webkitgtk';
export const ENGINE_NAMES: Record<Engine, string> = { chromium: 'Chromium', firefox: 'Firefox', webkitgtk: 'WebKitGTK' };

const FIREFOX = '/usr/bin/firefox-esr';
const MULTIARCH: Partial<Record<string, string>> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };
const MINIBROWSER = `/usr/lib/${MULTIARCH[process.arch]}/webkit2gtk-4.1/MiniBrowser`;
/** Long enough for a benchmark's whole loop in one evaluation. */
const SCRIPT_TIMEOUT_MS = 600_000;

/** One browser with one tab. */
export interface Browser {
  /** Name and version, e.g. "Firefox 153.8.0". */
  version: string;
  /** Loads `url` in the tab. */
  goto(url: string): Promise<void>;
  /**
   * The value of a JavaScript expression in the tab (a promise is awaited), which must survive JSON. A string,
   * not a function: tsx's transform would add helpers (__name) that do not exist in the page.
   */
  evaluate<T>(expression: string): Promise<T>;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
  const page = await browser.newPage();
  return {
    version: `Chromium ${browser.version()}`,
    goto: async (url) => { await page.goto(url); },
    evaluate: (expression) => page.evaluate(expression),
    close: () => browser.close(),
  };
}

export async function launchFirefox(): Promise<Browser> {
  const { default: puppeteer } = await import('puppeteer-core');
  const browser = await puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX, headless: true, protocolTimeout: SCRIPT_TIMEOUT_MS });
  const page = (await browser.pages())[0] ?? await browser.newPage();
  return {
    version: `Firefox ${(await browser.version()).replace(/^firefox\//i, '')}`,
    goto: async (url) => { await page.goto(url); },
    evaluate: async <T>(expression: string) => await page.evaluate(expression) as T,
    close: () => browser.close(),
  };
}

/** Stops a process this module started and waits for it to be gone. */
function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}

/** An Xvfb server on the first free display number (which it writes to fd 3). */
async function startXvfb(): Promise<{ display: string; proc: ChildProcess }> {
  const proc = spawn('Xvfb', ['-displayfd', '3', '-nolisten', 'tcp', '-screen', '0', '1280x800x24'],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d) => { log += d; });
  const display = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdio[3]!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(`:${out.trim()}`);
    });
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`Xvfb exited (${code}): ${log}`)));
  });
  return { display, proc };
}

/**
 * MiniBrowser under WebKitWebDriver on a free port. JSC_useSharedArrayBuffer=1: the GTK port exposes
 * SharedArrayBuffer (wasm threads) to cross-origin isolated pages only with it (Safari does without).
 */
export async function launchWebKitGTK(): Promise<Browser> {
  const xvfb = await startXvfb();
  const port = await freePort();
  const driverProc = spawn('WebKitWebDriver', [`--port=${port}`], {
    stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, DISPLAY: xvfb.display, JSC_useSharedArrayBuffer: '1' },
  });
  const shutdown = async () => { await stop(driverProc); await stop(xvfb.proc); };
  try {
    await waitFor(() => fetch(`http://127.0.0.1:${port}/status`), 20_000, 'WebKitWebDriver');
    const { Builder } = await import('selenium-webdriver');
    const driver = new Builder().usingServer(`http://127.0.0.1:${port}`).withCapabilities({
      browserName: 'MiniBrowser',
      'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
    }).build();
    await driver.manage().setTimeouts({ script: SCRIPT_TIMEOUT_MS });
    const caps = await driver.getCapabilities();
    return {
      version: `WebKitGTK ${caps.get('browserVersion')}`,
      goto: (url) => driver.get(url),
      evaluate: async <T>(expression: string) => {
        // WebDriver's asynchronous script: the last argument is the callback; errors come back as values.
        const r = await driver.executeAsyncScript<{ value?: T; error?: string }>(`const done = arguments[arguments.length - 1];
          Promise.resolve().then(() => (${expression})).then((value) => done({ value }), (e) => done({ error: e instanceof Error ? e.message + ' at ' + e.stack : String(e) }));`);
        if (r.error !== undefined) throw new Error(`in WebKitGTK: ${r.error}`);
        return r.value as T;
      },
      close: async () => { await driver.quit().catch(() => {}); await shutdown(); },
    };
  } catch (err) {
    await shutdown();
    throw err;
  }
}

export const LAUNCHERS: Record<Engine, () => Promise<Browser>> = {
  chromium: launchChromium, firefox: launchFirefox, webkitgtk: launchWebKitGTK,
};

/** examples/browser/serve.mjs on a free port of 127.0.0.1, with `files` (URL path -> file) served next to the repository. */
export async function serveExample(files: Record<string, string>): Promise<{ origin: string; close(): void }> {
  const { serve } = await import(`${ROOT}/examples/browser/serve.mjs`);
  const server = await serve({ files });
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

/** An image for the page, at a URL path of its server. */
export interface PageImage { name: string; path: string; type: string }
/** The worker's answer for one image and its timing of `classify` (decode, preprocessing, forward, top-k). */
export interface PageAnswer { name: string; top5: TopPrediction[]; ms: number }
export interface ExamplePageRun {
  /** The page's status line once the model was ready (it names the threads and the isolation). */
  status: string;
  crossOriginIsolated: boolean;
  /** From navigation start until the worker reported the model ready (polled every 5 ms). */
  readyMs: number;
  answers: PageAnswer[];
}

/**
 * examples/browser from `origin` with ?model= and ?threads=: waits for its worker's model, then gives it each
 * image in turn the way a picked file arrives (a File set on the page's <input type=file>, then `change`) and
 * collects the worker's answers, all in one evaluation (no driver round trip between images).
 */
export async function classifyOnExamplePage(browser: Browser, page: { origin: string; model: string; threads: number },
  images: PageImage[]): Promise<ExamplePageRun> {
  await browser.goto(`${page.origin}/examples/browser/?model=${encodeURIComponent(page.model)}&threads=${page.threads}`);
  return browser.evaluate<ExamplePageRun>(`(async () => {
    const until = (probe, what) => new Promise((resolve, reject) => {
      const end = performance.now() + 120000;
      const poll = () => {
        const error = document.querySelector('#status.error');
        if (error) return reject(new Error(what + ': ' + error.textContent));
        const value = probe();
        if (value) return resolve(value);
        if (performance.now() > end) return reject(new Error(what + ': no answer in 120 s'));
        setTimeout(poll, 5);
      };
      poll();
    });
    await until(() => document.body.dataset.ready === 'true', 'model');
    const readyMs = performance.now();
    const status = document.getElementById('status').textContent;
    const answers = [];
    const images = ${JSON.stringify(images)};
    for (let i = 0; i < images.length; i++) {
      const name = i + '-' + images[i].name;
      const bytes = await (await fetch(images[i].path)).arrayBuffer();
      const picked = new DataTransfer();
      picked.items.add(new File([bytes], name, { type: images[i].type }));
      const input = document.getElementById('file');
      input.files = picked.files;
      input.dispatchEvent(new Event('change'));
      const result = JSON.parse(await until(() => {
        const r = document.body.dataset.result;
        return r && JSON.parse(r).name === name ? r : undefined;
      }, name));
      if (result.type !== 'result') throw new Error(name + ': ' + result.message);
      answers.push({ name: images[i].name, top5: result.top5, ms: result.ms });
    }
    return { status, crossOriginIsolated: self.crossOriginIsolated, readyMs, answers };
  })()`);
}
