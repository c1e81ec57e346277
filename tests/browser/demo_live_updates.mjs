// Browser test of the demo (examples/demo): two tabs of one signed-in user;
// a note posted through the form in one tab appears in the other through the
// WebSocket push, without a reload, and a note's text is shown as text, not
// markup. Drives Debian's /usr/bin/chromium through playwright-core (which
// downloads no browser); scripts/setup-deps installs both.
//
//   node demo_live_updates.mjs DEMO_BINARY [ARTIFACTS_DIR]
//
// CTest runs it as browser_demo_live_updates (tests/browser/CMakeLists.txt).
// On failure it saves a screenshot of each page in ARTIFACTS_DIR (or
// $SQUALL_BROWSER_ARTIFACTS, else a temp dir), prints their paths and the
// demo's output, and exits 1. Only 127.0.0.1 is contacted: the Chromium flags
// below turn off the browser's own background traffic (which this machine's
// closed network would refuse, many connections at a time), and a page's
// request for any other host is aborted and fails the test.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const kChromium = '/usr/bin/chromium';
const kChromiumArgs = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const kOverallDeadlineMs = 60_000;  // the whole test, cleanup excluded
const kStartupDeadlineMs = 20_000;  // the demo accepting connections (ASan builds start slowly)
const kStepTimeoutMs = 10_000;      // each wait for something on a page
const kCleanupGraceMs = 3_000;      // SIGTERM to SIGKILL
const kNoteBodies = '#notes li.note .note-body';

const started = Date.now();
function log(msg) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(2)} s] ${msg}`);
}
function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

const demoBinary = process.argv[2];
const artifactsDir = path.resolve(process.argv[3] || process.env.SQUALL_BROWSER_ARTIFACTS ||
                                  path.join(os.tmpdir(), 'squall-browser-artifacts'));
if (!demoBinary) fail('usage: node demo_live_updates.mjs DEMO_BINARY [ARTIFACTS_DIR]');
if (!fs.statSync(demoBinary, { throwIfNoEntry: false })?.isFile()) {
  fail(`demo binary ${demoBinary} is not a file (build the target demo)`);
}
if (!fs.existsSync(kChromium)) {
  fail(`${kChromium} is missing: run scripts/setup-deps (installs Debian's chromium)`);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  fail(`cannot load playwright-core (${e.message.split('\n')[0]}): run scripts/setup-deps ` +
       '(npm ci in tests/browser)');
}

/** A port that was free a moment ago: bound on 127.0.0.1 port 0, then closed. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function tryConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => { sock.destroy(); resolve(false); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The running demo: its process, URL and everything it printed. */
class Demo {
  constructor(binary, workDir) {
    this.binary = binary;
    this.workDir = workDir;
    this.output = '';
    this.proc = null;
    this.exited = null;  // resolves with a description once the process is gone
  }

  /** Starts the demo on a fresh port; resolves once it accepts connections. */
  async start() {
    const port = await freePort();
    const dataDir = path.join(this.workDir, `data-${port}`);
    fs.mkdirSync(dataDir, { recursive: true });
    const args = ['--port', String(port), '--address', '127.0.0.1',
                  '--db', path.join(this.workDir, `notes-${port}.db`), '--data-dir', dataDir,
                  '--cookie-secret', crypto.randomBytes(24).toString('hex')];
    log(`starting ${this.binary} ${args.slice(0, 4).join(' ')} ...`);
    this.proc = spawn(this.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const append = (chunk) => {
      this.output += chunk.toString();
      if (this.output.length > 64_000) this.output = this.output.slice(-64_000);
    };
    this.proc.stdout.on('data', append);
    this.proc.stderr.on('data', append);
    let gone = false;
    this.exited = new Promise((resolve) => {
      this.proc.once('error', (e) => { gone = true; resolve(`could not start: ${e.message}`); });
      this.proc.once('exit', (code, signal) => { gone = true; resolve(`exited (code ${code}, signal ${signal})`); });
    });
    const deadline = Date.now() + kStartupDeadlineMs;
    while (Date.now() < deadline) {
      if (gone) return { ok: false, why: await this.exited };
      if (await tryConnect(port)) {
        this.url = `http://127.0.0.1:${port}`;
        return { ok: true };
      }
      await sleep(50);
    }
    return { ok: false, why: `not accepting connections on port ${port} after ${kStartupDeadlineMs} ms` };
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const killed = await Promise.race([this.exited.then(() => true), sleep(kCleanupGraceMs).then(() => false)]);
    if (!killed) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** The note bodies in `page`'s #notes, newest (first) first. */
function noteBodies(page) {
  return page.locator(kNoteBodies).allTextContents().then((a) => a.map((s) => s.trim()));
}

/** Waits until `page` shows a note whose body is exactly `text`. */
async function waitForNote(page, text, what) {
  try {
    await page.waitForFunction(([sel, t]) => [...document.querySelectorAll(sel)]
      .some((e) => e.textContent.trim() === t), [kNoteBodies, text], { timeout: kStepTimeoutMs });
  } catch (e) {
    throw new Error(`${what}: no ${kNoteBodies} reading ${JSON.stringify(text)} within ` +
                    `${kStepTimeoutMs} ms; notes shown: ${JSON.stringify(await noteBodies(page))}`);
  }
}

async function waitLive(page, what) {
  try {
    await page.waitForSelector('body[data-live="on"]', { state: 'attached', timeout: kStepTimeoutMs });
  } catch (e) {
    throw new Error(`${what}: body[data-live="on"] not set within ${kStepTimeoutMs} ms ` +
                    `(the WebSocket to /ws/notes did not open); page is ${page.url()}`);
  }
}

function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

/**
 * Posts a note through form#new-note. The page may submit it itself (fetch)
 * or let the browser post and follow the redirect; either way this returns
 * once the POST /notes was answered and any page load it caused is done.
 */
async function postNote(page, text, attachment) {
  await page.fill('#new-note textarea[name="body"]', text);
  if (attachment) await page.setInputFiles('#new-note input[type="file"][name="attachment"]', attachment);
  const loaded = page.waitForEvent('load', { timeout: kStepTimeoutMs }).catch((e) => e);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/notes',
                         { timeout: kStepTimeoutMs }),
    page.click('#new-note button[type="submit"]'),
  ]);
  expect(response.status() < 400, `POST /notes was answered ${response.status()}`);
  if (response.request().isNavigationRequest()) {
    const result = await loaded;
    if (result instanceof Error) throw new Error(`the page after POST /notes did not load: ${result.message}`);
  }
}

/** Keeps `page` for the failure screenshots and collects its script errors. */
function watch(state, name, page) {
  state.pages.push([name, page]);
  page.on('console', (m) => { if (m.type() === 'error') state.consoleErrors.push(`${name}: ${m.text()}`); });
  page.on('pageerror', (e) => state.consoleErrors.push(`${name}: ${e.message}`));
  return page;
}

async function run(state) {
  const { demo } = state;
  let up = await demo.start();
  if (!up.ok) {
    // The port was free when picked; another process may have taken it since.
    log(`demo did not come up (${up.why}); retrying once on another port`);
    await demo.stop();
    up = await demo.start();
    if (!up.ok) throw new Error(`demo did not come up: ${up.why}`);
  }
  log(`demo is accepting connections at ${demo.url}`);
  // A crash (an ASan report, say) fails the test at once, not at the next timeout.
  demo.exited.then((why) => state.demoDied(new Error(`the demo ${why} during the test`)));

  state.browser = await chromium.launch({
    executablePath: kChromium, headless: true, args: kChromiumArgs, timeout: 30_000,
  });
  const context = await state.browser.newContext({ baseURL: demo.url });
  context.setDefaultTimeout(kStepTimeoutMs);
  context.setDefaultNavigationTimeout(kStepTimeoutMs);
  // Only the demo is ever contacted: anything else would be a bug in the page.
  await context.route((url) => url.hostname !== '127.0.0.1', (route) => {
    state.offMachine.push(route.request().url());
    return route.abort();
  });

  const pageA = watch(state, 'A', await context.newPage());

  // Page A signs up a new user and lands on /, live.
  const user = `u${crypto.randomBytes(6).toString('hex')}`;
  await pageA.goto('/signup');
  await pageA.fill('form#signup input[name="username"]', user);
  await pageA.fill('form#signup input[name="password"][type="password"]', `pw-${user}`);
  await Promise.all([
    pageA.waitForURL(`${demo.url}/`, { timeout: kStepTimeoutMs }),
    pageA.click('form#signup button[type="submit"]'),
  ]);
  log(`page A signed up ${user} and is on /`);
  expect(await pageA.locator('form#new-note[enctype="multipart/form-data"]').count() === 1,
         'page A: / has no form#new-note with enctype multipart/form-data');
  expect(await pageA.locator('ul#notes').count() === 1, 'page A: / has no ul#notes');
  expect(await pageA.locator('form#logout').count() === 1, 'page A: / has no form#logout');
  await waitLive(pageA, 'page A');
  log('page A is live');

  // Page B: same context, so the same signed cookie; it will never reload.
  const pageB = watch(state, 'B', await context.newPage());
  await pageB.goto('/');
  expect(new URL(pageB.url()).pathname === '/', `page B: / sent the signed-in user to ${pageB.url()}`);
  await waitLive(pageB, 'page B');
  let navigationsOfB = 0;
  pageB.on('framenavigated', (frame) => { if (frame === pageB.mainFrame()) navigationsOfB++; });
  await pageB.evaluate(() => { window.__squallNoReload = 'still here'; });
  log('page B is live');

  // A note posted from A shows up in B by the push, and in A.
  const text = `note ${crypto.randomBytes(8).toString('hex')} at ${new Date().toISOString()}`;
  await postNote(pageA, text);
  log('page A posted a note');
  await waitForNote(pageB, text, 'page B (live update)');
  log('page B shows it without reloading');
  await waitForNote(pageA, text, 'page A (after posting)');

  // Markup in a note is text, both as pushed (B) and as rendered by the server (A).
  const markup = `<b>x</b> ${crypto.randomBytes(4).toString('hex')}`;
  await postNote(pageA, markup, { name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from('hello\n') });
  log('page A posted a note of markup, with an attachment');
  await waitForNote(pageB, markup, 'page B (markup note)');
  await waitForNote(pageA, markup, 'page A (markup note)');
  for (const [name, page] of state.pages) {
    const bodies = await noteBodies(page);
    expect(bodies[0] === markup && bodies.includes(text),
           `page ${name}: notes are not newest first: ${JSON.stringify(bodies)}`);
    const bold = await page.locator(`${kNoteBodies} b`).count();
    expect(bold === 0, `page ${name}: the note ${JSON.stringify(markup)} was rendered as markup`);
  }
  expect(await pageB.evaluate(() => window.__squallNoReload) === 'still here' && navigationsOfB === 0,
         'page B reloaded or navigated: the notes must arrive over the WebSocket');
  log('both pages show the markup as text, newest first; page B never reloaded');

  // Signed out (a fresh context, no cookie): / sends to /login; bad credentials get a 403 .error page.
  const anon = await state.browser.newContext({ baseURL: demo.url });
  const pageC = watch(state, 'C', await anon.newPage());
  await pageC.goto('/');
  expect(new URL(pageC.url()).pathname === '/login', `page C: / signed out went to ${pageC.url()}, not /login`);
  await pageC.fill('form#login input[name="username"]', user);
  await pageC.fill('form#login input[name="password"][type="password"]', 'wrong password');
  const [response] = await Promise.all([
    pageC.waitForNavigation({ timeout: kStepTimeoutMs }),
    pageC.click('form#login button[type="submit"]'),
  ]);
  expect(response && response.status() === 403,
         `page C: a wrong password got ${response ? response.status() : 'no response'}, not 403`);
  expect(await pageC.locator('.error').count() > 0, 'page C: the 403 page has no .error');
  log('signed out: / redirects to /login; a wrong password gets 403 with .error');

  expect(state.offMachine.length === 0, `pages asked for addresses off the machine: ${state.offMachine.join(', ')}`);
}

async function saveScreenshots(state) {
  fs.mkdirSync(artifactsDir, { recursive: true });
  for (const [name, page] of state.pages) {
    const file = path.join(artifactsDir, `demo_live_updates-page-${name}.png`);
    try {
      await page.screenshot({ path: file, fullPage: true, timeout: 5_000 });
      console.error(`screenshot of page ${name} (${page.url()}): ${file}`);
    } catch (e) {
      console.error(`screenshot of page ${name} failed: ${e.message.split('\n')[0]}`);
    }
  }
}

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'squall-demo-browser-'));
const state = { demo: new Demo(path.resolve(demoBinary), workDir), browser: null, pages: [],
                consoleErrors: [], offMachine: [], demoDied: null };
// Screenshots from an earlier failed run would mislead.
if (fs.existsSync(artifactsDir)) {
  for (const f of fs.readdirSync(artifactsDir)) {
    if (f.startsWith('demo_live_updates-')) fs.rmSync(path.join(artifactsDir, f));
  }
}
// Last resort if cleanup itself hangs: the demo must not outlive the test.
const hardStop = setTimeout(() => {
  console.error('FAIL: cleanup hung; killing the demo');
  state.demo.proc?.kill('SIGKILL');
  process.exit(1);
}, kOverallDeadlineMs + 20_000);
hardStop.unref();

let failed = null;
let timer;
try {
  const demoDied = new Promise((_, reject) => { state.demoDied = reject; });
  await Promise.race([
    run(state),
    demoDied,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`overall deadline of ${kOverallDeadlineMs} ms passed`)),
                         kOverallDeadlineMs);
    }),
  ]);
} catch (e) {
  failed = e;
  console.error(`FAIL: ${e.message}`);
  await saveScreenshots(state);
  if (state.consoleErrors.length) console.error(`page errors:\n  ${state.consoleErrors.join('\n  ')}`);
} finally {
  clearTimeout(timer);
  try {
    await state.browser?.close();
  } catch (e) {
    console.error(`closing the browser: ${e.message}`);
  }
  await state.demo.stop();
  if (failed && state.demo.output) console.error(`demo output (last 64 kB):\n${state.demo.output}`);
  fs.rmSync(workDir, { recursive: true, force: true });
}
if (failed) process.exit(1);
log('PASS');
process.exit(0);
