// The dashboard following a running sweep in Chromium: a real coordinator, a real worker
// training the tiny model on CPU, and the page's event stream. Curves grow as metrics arrive
// (without a reload), a running job's page shows the tail of its trainer's log, the page shows
// that it reconnects while the coordinator restarts (its action buttons disabled meanwhile) and
// carries on after, a viewer's page offers no cancel, and cancelling the sweep from a user's
// page cancels its jobs.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  Coordinator, launchBrowser, openDashboard, scratch, screenshot, startWorker, stopProcess, tokens,
} from './support.mjs';

const SWEEP = `name: web-live
description: two tiny CPU jobs, long enough to watch
grid:
  model: [tiny]
  seed: [1, 2]
fixed:
  steps: 5000
  batch_size: 4
  context_length: 64
  log_every: 1
`;

let browser;
let dir;
let coordinator;
let worker;
before(async () => {
  browser = await launchBrowser();
  dir = scratch();
  coordinator = await Coordinator.start(dir.dir);
});
after(async () => {
  await stopProcess(worker);
  await coordinator?.stop();
  await browser?.close();
  dir?.remove();
});

const points = (page) => page.locator('#curves-chart').getAttribute('data-points').then(Number);

test('curves grow live, survive a coordinator restart, and cancel works', async () => {
  const { sweep } = await coordinator.api('/api/v1/sweeps',
    { sweepFile: SWEEP, sweepFileName: 'web-live.yaml' });
  worker = startWorker(coordinator, join(dir.dir, 'worker'));

  const page = await openDashboard(browser, coordinator, `#/sweeps/${sweep.id}/curves`);
  await page.evaluate(() => { window.__notReloaded = true; });
  await page.waitForSelector('#curves-chart[data-series="1"]', { timeout: 120000 });
  await page.waitForFunction(() => Number(document.querySelector('#curves-chart')
    ?.getAttribute('data-points')) > 0, null, { timeout: 120000 });
  const before = await points(page);
  await page.waitForFunction((n) => Number(document.querySelector('#curves-chart')
    ?.getAttribute('data-points')) > n, before, { timeout: 60000 });
  assert.ok(await points(page) > before);
  assert.equal(await page.evaluate(() => window.__notReloaded), true);
  await screenshot(page, 'curves-live');

  // A running job's page: its trainer's progress lines, as its worker sent them.
  const { jobs } = await coordinator.api(`/api/v1/sweeps/${sweep.id}/jobs`);
  const running = jobs.find((j) => j.state === 'JOB_STATE_RUNNING') ?? jobs[0];
  const jobPage = await openDashboard(browser, coordinator, `#/jobs/${running.spec.jobId}`);
  await jobPage.waitForFunction(() => /^step \d+\/5000 loss /m.test(
    document.querySelector('#job-log')?.textContent ?? ''), null, { timeout: 60000 });
  // The job's own attempt ordinal, with the coordinator-wide id the worker's folder is named by.
  assert.match(await jobPage.locator('#job-log-caption').textContent(),
    /^The last \d+ lines of rank 0's log, attempt 1 \(id \d+\), /);
  const lastStep = (text) => Math.max(...[...text.matchAll(/^step (\d+)\//gm)].map((m) => +m[1]));
  const firstSeen = lastStep(await jobPage.locator('#job-log').textContent());
  // It follows the log while the job runs (the worker sends it every 5 s).
  await jobPage.waitForFunction((n) => {
    const text = document.querySelector('#job-log')?.textContent ?? '';
    return Math.max(...[...text.matchAll(/^step (\d+)\//gm)].map((m) => +m[1])) > n;
  }, firstSeen, { timeout: 30000 });
  assert.ok(lastStep(await jobPage.locator('#job-log').textContent()) > firstSeen);
  await screenshot(jobPage, 'job-log');
  // What the trainer ran with, from its provenance: the micro-batch it resolved from zero.
  await jobPage.waitForSelector('#job-provenance tr');
  assert.equal(await jobPage.locator('#job-settings tr', { hasText: 'micro_batch_size' })
    .locator('td').textContent(), '4 (default)');

  // At 800 px nothing runs off the window: not the job's dataSha256, not the sweeps' Cancel.
  await jobPage.setViewportSize({ width: 800, height: 900 });
  // Measured after the next frame, once the chart has followed its narrowed box (a
  // ResizeObserver's callback, which runs in that frame).
  const fits = () => jobPage.evaluate(() => new Promise((resolve) => requestAnimationFrame(() =>
    setTimeout(() => resolve(document.documentElement.scrollWidth <=
      document.documentElement.clientWidth)))));
  assert.equal(await fits(), true, 'the job view is wider than 800 px');
  await screenshot(jobPage, 'job-800px');
  await jobPage.goto(`${coordinator.url}#/`);
  const cancel = jobPage.locator(`button[data-action="cancel"][data-id="${sweep.id}"]`);
  await cancel.waitFor();
  assert.equal(await fits(), true, 'the sweeps view is wider than 800 px');
  const box = await cancel.boundingBox();
  assert.ok(box.x + box.width <= 800, `Cancel ends at ${box.x + box.width} px`);
  await screenshot(jobPage, 'sweeps-800px');
  await jobPage.close();

  // A viewer's token: the coordinator says so, and the page offers no cancel.
  const whoami = await fetch(new URL('/api/v1/whoami', coordinator.url),
    { headers: { Authorization: `Bearer ${tokens.viewer}` } }).then((r) => r.json());
  assert.deepEqual(whoami, { role: 'viewer' });
  const viewerPage = await openDashboard(browser, coordinator, `#/sweeps/${sweep.id}/grid`,
    tokens.viewer);
  await viewerPage.waitForSelector('body[data-role="viewer"]');
  await viewerPage.waitForSelector(`button[data-action="cancel"][data-id="${sweep.id}"]`,
    { state: 'attached' });
  assert.equal(await viewerPage.locator(`button[data-action="cancel"][data-id="${sweep.id}"]`)
    .isVisible(), false);
  await screenshot(viewerPage, 'viewer');
  await viewerPage.close();

  // The coordinator goes away: the page says it is reconnecting, then follows again.
  await coordinator.stop();
  await page.waitForSelector('#connection[data-state="reconnecting"]', { timeout: 30000 });
  assert.equal(await page.locator('#connection').textContent(), 'reconnecting…');
  // No action can reach the coordinator meanwhile: the sweep's Cancel is disabled till then.
  const sweepCancel = page.locator(`button[data-action="cancel"][data-id="${sweep.id}"]`);
  assert.equal(await sweepCancel.isDisabled(), true);
  await screenshot(page, 'reconnecting');
  await coordinator.restart();
  await page.waitForSelector('#connection[data-state="live"]', { timeout: 60000 });
  assert.equal(await sweepCancel.isEnabled(), true);
  assert.equal(await page.evaluate(() => window.__notReloaded), true);

  // Cancel the sweep from its page.
  await page.goto(`${coordinator.url}#/sweeps/${sweep.id}/grid`);
  page.on('dialog', (dialog) => dialog.accept());
  await page.waitForSelector('body[data-role="user"]');
  await page.click(`button[data-action="cancel"][data-id="${sweep.id}"]`);
  await page.waitForFunction(() =>
    document.querySelector('#sweep-state')?.textContent === 'cancelled', null, { timeout: 60000 });
  const after = await coordinator.api(`/api/v1/sweeps/${sweep.id}`);
  assert.equal(after.state, 'SWEEP_STATE_CANCELLED');
  assert.equal(after.counts.cancelled, 2);
  await screenshot(page, 'cancelled');
  await page.close();
});
