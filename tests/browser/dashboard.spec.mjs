// Drives Debian's chromium (through playwright-core, which downloads no browser)
// against the PERPETUO dashboard of a running gateway.
//
//   node dashboard.spec.mjs BASE_URL WORKSPACE TOKEN SCREENSHOT.png [DASHBOARD_PATH]
//
// Opens BASE_URL + DASHBOARD_PATH (default /dashboard) with
// #ws=WORKSPACE&token=TOKEN&days=1, waits for every chart and the log table to
// be drawn (data-ready="true"), checks the totals shown against
// /workspaces/WORKSPACE/usage?days=1 fetched here with the same token, checks
// the log table against /logs?limit=20, saves a full-page screenshot, then
// checks that a bad token is shown as a readable 401 and a token of another
// workspace as a readable 403.
//
// With DASHBOARD_EXPECT_ERROR=503 (or 401, 403) it only opens the page and
// checks that this error is shown, readably, with no chart claiming to be
// ready, and saves the screenshot.
//
// Exit codes: 0 passed, 1 a check failed, 3 the browser could not be launched
// (the pytest wrapper skips on 3 only). Prints one JSON line of what it saw.

import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const READY_IDS = ['chart-cost', 'chart-tokens', 'chart-latency', 'chart-errors', 'logs-table'];
const TIMEOUT_MS = 20000;

const [base, ws, token, screenshot, dashPath = '/dashboard'] = process.argv.slice(2);
if (!base || !ws || !token || !screenshot) {
  console.error('usage: node dashboard.spec.mjs BASE_URL WORKSPACE TOKEN SCREENSHOT.png [DASHBOARD_PATH]');
  process.exit(2);
}
const origin = new URL(base).origin;

class CheckFailed extends Error {}
function check(cond, message) {
  if (!cond) throw new CheckFailed(message);
}

async function api(path, bearer = token) {
  const res = await fetch(base + path, { headers: { Authorization: `Bearer ${bearer}` } });
  const text = await res.text();
  check(res.ok, `GET ${path}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

function pageUrl(bearer, workspace = ws) {
  const frag = new URLSearchParams({ ws: workspace, token: bearer, days: '1' });
  return `${base}${dashPath}#${frag}`;
}

const EXPECT_ERROR = process.env.DASHBOARD_EXPECT_ERROR || '';
const BANNERS = {
  401: /Not authorized/, 403: /Forbidden: this token does not grant access/,
  503: /analytics store is unavailable/,
};

// Opens the page and checks that it shows `status` readably, and draws nothing.
async function expectError(context, url, status, shot) {
  const page = await context.newPage();    // a page of its own: no state of an earlier load
  await page.goto(url, { waitUntil: 'load', timeout: TIMEOUT_MS });
  await page.locator('#error').waitFor({ state: 'visible', timeout: TIMEOUT_MS });
  await page.waitForFunction((ids) => ids.every((id) =>
    document.getElementById(id).getAttribute('data-state') === 'error'), READY_IDS, { timeout: TIMEOUT_MS });
  const banner = (await page.locator('#error').textContent()).replace(/\s+/g, ' ').trim();
  check(BANNERS[status].test(banner) && banner.includes(`HTTP ${status}`),
    `the ${status} banner reads "${banner}"`);
  const ready = await page.evaluate((ids) =>
    ids.filter((id) => document.getElementById(id).getAttribute('data-ready') === 'true'), READY_IDS);
  check(ready.length === 0, `charts ready after a ${status}: ${ready}`);
  if (shot) await page.screenshot({ path: shot, fullPage: false });
  await page.close();
  return banner;
}

async function main() {
  if (EXPECT_ERROR) return withBrowser(async (context, seen) => {
    check(BANNERS[EXPECT_ERROR], `DASHBOARD_EXPECT_ERROR=${EXPECT_ERROR}: one of 401, 403, 503`);
    mkdirSync(dirname(screenshot), { recursive: true });
    seen[`banner_${EXPECT_ERROR}`] = await expectError(context, pageUrl(token), EXPECT_ERROR, screenshot);
  });
  const expected = await api(`/workspaces/${encodeURIComponent(ws)}/usage?days=1`);
  const expectedLogs = await api(`/workspaces/${encodeURIComponent(ws)}/logs?limit=20`);

  return withBrowser(async (context, seen) => {
    const page = await context.newPage();
    // 1. the dashboard, drawn from the API
    const resp = await page.goto(pageUrl(token), { waitUntil: 'load', timeout: TIMEOUT_MS });
    check(resp && resp.status() === 200, `GET ${dashPath}: HTTP ${resp && resp.status()}`);
    check((resp.headers()['content-type'] || '').startsWith('text/html'),
      `${dashPath} is served as ${resp.headers()['content-type']}, not text/html`);
    try {
      await page.waitForFunction((ids) => ids.every((id) => {
        const node = document.getElementById(id);
        return node && node.getAttribute('data-ready') === 'true';
      }), READY_IDS, { timeout: TIMEOUT_MS });
    } catch (e) {
      const states = await page.evaluate((ids) => ids.map((id) => {
        const n = document.getElementById(id);
        return `${id}=${n ? n.getAttribute('data-state') : 'missing'}`;
      }).join(' '), READY_IDS);
      const banner = await page.locator('#error').textContent().catch(() => '');
      throw new CheckFailed(`charts not ready after ${TIMEOUT_MS} ms: ${states}; error banner: ${banner.trim()}`);
    }
    check(await page.locator('#error').isHidden(), 'the error banner is shown: ' +
      (await page.locator('#error').textContent()).trim());

    const shown = await page.evaluate(() => {
      const t = (id) => document.getElementById(id);
      return {
        tokensText: t('total-tokens').textContent, tokensValue: t('total-tokens').dataset.value,
        costText: t('total-cost').textContent, costValue: t('total-cost').dataset.value,
        requestsText: t('total-requests').textContent,
        charts: ['chart-cost', 'chart-tokens', 'chart-latency', 'chart-errors'].map((id) => ({
          id, state: t(id).dataset.state, bars: t(id).querySelectorAll('svg rect').length,
          labels: [...t(id).querySelectorAll('svg g.row > text:first-of-type')].map((x) => x.textContent),
        })),
        rows: [...document.querySelectorAll('#logs-table tbody tr[data-request-id]')].map((tr) =>
          Object.fromEntries([...tr.querySelectorAll('td[data-field]')].map((td) =>
            [td.dataset.field, td.textContent]))),
        rowIds: [...document.querySelectorAll('#logs-table tbody tr[data-request-id]')].map((tr) => tr.dataset.requestId),
      };
    });
    Object.assign(seen, { expected: { total_tokens: expected.total_tokens, total_cost: expected.total_cost,
      total_requests: expected.total_requests }, shown: { tokens: shown.tokensText, cost: shown.costText,
      requests: shown.requestsText, charts: shown.charts, log_rows: shown.rows.length } });

    const digits = (x) => x.replace(/[^0-9.\-]/g, '');
    check(Number(shown.tokensValue) === expected.total_tokens,
      `total tokens data-value ${shown.tokensValue} != ${expected.total_tokens}`);
    check(Number(digits(shown.tokensText)) === expected.total_tokens,
      `total tokens shown "${shown.tokensText}" != ${expected.total_tokens}`);
    check(Number(shown.costValue) === expected.total_cost,
      `total cost data-value ${shown.costValue} != ${expected.total_cost}`);
    check(shown.costText.startsWith('$') && Number(digits(shown.costText)) === expected.total_cost,
      `total cost shown "${shown.costText}" != ${expected.total_cost}`);
    check(Number(digits(shown.requestsText)) === expected.total_requests,
      `requests shown "${shown.requestsText}" != ${expected.total_requests}`);

    const providers = Object.keys(expected.by_provider).sort();
    for (const c of shown.charts) {
      check(c.state === 'ready', `${c.id} is ${c.state}, expected drawn bars`);
      check(JSON.stringify([...c.labels].sort()) === JSON.stringify(providers),
        `${c.id} labels ${JSON.stringify(c.labels)} != providers ${JSON.stringify(providers)}`);
    }
    check(shown.charts.find((c) => c.id === 'chart-cost').bars >= 1, 'the cost chart has no bar');
    check(shown.charts.find((c) => c.id === 'chart-tokens').bars >= 1, 'the tokens chart has no bar');
    check(shown.charts.find((c) => c.id === 'chart-latency').bars >= 1, 'the latency chart has no bar');

    check(shown.rows.length >= 1, 'the log table has no row');
    check(shown.rows.length === expectedLogs.logs.length,
      `the log table has ${shown.rows.length} rows, the API ${expectedLogs.logs.length}`);
    check(JSON.stringify(shown.rowIds) === JSON.stringify(expectedLogs.logs.map((e) => e.request_id)),
      'the log table is not the API\'s newest-first list');
    const first = shown.rows[0], api0 = expectedLogs.logs[0];
    check(first.model === api0.model && first.provider === api0.provider &&
      digits(first.status) === String(api0.status) && Number(digits(first.tokens)) === api0.tokens &&
      Number(digits(first.cost)) === api0.cost,
      `first log row ${JSON.stringify(first)} does not match ${JSON.stringify(api0)}`);

    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });

    // 2. a bad token, and a token of another workspace: readable errors
    seen.banner_401 = await expectError(context, pageUrl('not-a-valid-token'), '401',
      screenshot.replace(/(\.png)?$/, '-401.png'));
    seen.banner_403 = await expectError(context, pageUrl(token, `${ws}-not-granted`), '403', null);
  });
}

// Runs `body(context, seen)` in a fresh chromium profile; fails on page errors,
// console errors and any request that leaves the gateway's origin.
async function withBrowser(body) {
  const profile = mkdtempSync(join(tmpdir(), 'perpetuo-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: ARGS,
      viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1, colorScheme: 'light',
      timeout: 30000,
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    console.error(`cannot launch ${CHROMIUM}: ${e.message}`);
    process.exit(3);
  }
  const problems = [];
  const seen = {};
  try {
    context.on('weberror', (e) => problems.push(`page error: ${e.error().message}`));
    context.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
    context.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith('data:') && new URL(u).origin !== origin) problems.push(`request off the origin: ${u}`);
    });
    try {
      await body(context, seen);
    } catch (e) {
      if (problems.length) e.message += `\n${problems.join('\n')}`;
      throw e;
    }
    // the browser logs each non-2xx answer of fetch() as a console error itself
    const real = problems.filter((p) => !/Failed to load resource: the server responded with a status of (401|403|503)/.test(p));
    check(real.length === 0, real.join('\n'));
  } finally {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
    console.log(JSON.stringify(seen));
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e instanceof CheckFailed ? `FAILED: ${e.message}` : (e && e.stack) || String(e));
  process.exit(1);
});
