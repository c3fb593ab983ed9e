// What the dashboard's end-to-end tests share: real coordinators (and a worker) started as
// processes on loopback, databases seeded by seed_store, and the system's Chromium driven by
// playwright-core (no browser download). Paths come from the environment ctest sets:
//   ABLATE_BIN_DIR        the built binaries (ablate-coordinator, ablate-worker)
//   ABLATE_SEED_STORE     seed_store
//   ABLATE_WEB_ARTIFACTS  where screenshots and measurements go
//   ABLATE_CHROMIUM       the browser (default /usr/bin/chromium)
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const webDir = join(here, '..', '..', 'web');
// playwright-core is one of the dashboard's pinned npm packages.
const { chromium } = createRequire(join(webDir, 'package.json'))('playwright-core');

export const binDir = process.env.ABLATE_BIN_DIR ?? join(here, '..', '..', 'build', 'bin');
export const artifacts = process.env.ABLATE_WEB_ARTIFACTS ?? join(tmpdir(), 'ablate-web-artifacts');
const chromiumPath = process.env.ABLATE_CHROMIUM || '/usr/bin/chromium';
mkdirSync(artifacts, { recursive: true });

export const tokens = {
  user: randomBytes(16).toString('hex'),
  viewer: randomBytes(16).toString('hex'),
  worker: randomBytes(16).toString('hex'),
};
export const WORKER_ID = 'e2e-worker';

export function scratch() {
  const dir = mkdtempSync(join(tmpdir(), 'ablate-web-'));
  writeFileSync(join(dir, 'tokens'),
    `user ${tokens.user}\nviewer ${tokens.viewer}\nworker ${tokens.worker} ${WORKER_ID}\n`,
    { mode: 0o600 });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function seed(dir, scenario) {
  const tool = process.env.ABLATE_SEED_STORE ?? join(binDir, '..', 'tests', 'seed_store');
  execFileSync(tool, [`--db=${join(dir, 'a.db')}`, `--scenario=${scenario}`],
    { stdio: 'inherit' });
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A coordinator on `dir`'s database and token file, on fixed ports so a restart keeps the
// page's origin and the worker's address. It serves the dashboard from its default folder (the
// build's web/dist), as in `make demo`.
export class Coordinator {
  constructor(dir, httpPort, grpcPort) {
    Object.assign(this, { dir, httpPort, grpcPort, stderr: '' });
  }

  static async start(dir) {
    const c = new Coordinator(dir, await freePort(), await freePort());
    await c.restart();
    return c;
  }

  get url() {
    return `http://127.0.0.1:${this.httpPort}/`;
  }

  async restart() {
    const ports = join(this.dir, 'ports');
    rmSync(ports, { force: true });
    this.process = spawn(join(binDir, 'ablate-coordinator'), [
      '--listen', `127.0.0.1:${this.grpcPort}`, '--http', `127.0.0.1:${this.httpPort}`,
      '--db', join(this.dir, 'a.db'), '--ports-file', ports,
      '--token-file', join(this.dir, 'tokens'),
    ], { stdio: ['ignore', 'ignore', 'pipe'], cwd: this.dir });
    this.process.stderr.on('data', (d) => { this.stderr += d; });
    for (let i = 0; i < 300 && !existsSync(ports); i++) await sleep(100);
    if (!existsSync(ports) || !readFileSync(ports, 'utf8').includes('http=')) {
      throw new Error(`the coordinator did not start:\n${this.stderr}`);
    }
  }

  async stop() {
    if (!this.process || this.process.exitCode !== null) return;
    const exited = new Promise((r) => this.process.once('exit', r));
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 15000);
    await exited;
    clearTimeout(timer);
  }

  async api(path, body) {
    const response = await fetch(new URL(path, this.url), {
      method: body ? 'POST' : 'GET',
      headers: { Authorization: `Bearer ${tokens.user}`, 'Content-Type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await response.json();
    if (!response.ok) throw new Error(`${path}: ${json.error}`);
    return json;
  }
}

// A worker with one CPU slot whose trainers run (and checkpoint) under `workDir`.
export function startWorker(coordinator, workDir) {
  mkdirSync(workDir, { recursive: true });
  const worker = spawn(join(binDir, 'ablate-worker'), [
    '--coordinator', `127.0.0.1:${coordinator.grpcPort}`, '--worker-id', WORKER_ID,
    '--work-dir', workDir, '--slots', '1',
  ], { stdio: ['ignore', 'ignore', 'pipe'], cwd: workDir,
    env: { ...process.env, ABLATE_TOKEN: tokens.worker } });
  worker.stderrText = '';
  worker.stderr.on('data', (d) => { worker.stderrText += d; });
  return worker;
}

export async function stopProcess(child) {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
  await exited;
  clearTimeout(timer);
}

export async function launchBrowser() {
  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} is not installed`);
  return chromium.launch({ executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

// A page of the dashboard at `hash`, holding the user token (handed over in the address, as
// `make demo`'s link does).
export async function openDashboard(browser, coordinator, hash, token = tokens.user) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${coordinator.url}${hash}${hash.includes('#') ? '&' : '#'}token=${token}`);
  return page;
}

export async function screenshot(page, name, fullPage = true) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage });
}
