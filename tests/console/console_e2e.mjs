// Drives the console in Debian's chromium (headless, no browser download)
// with playwright-core from console/node_modules. Inputs come from the
// environment (tests/console/test_console.py); a screenshot of each page
// goes to SHOTS. Exits non-zero on the first failed expectation.
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const env = process.env;
const require = createRequire(`${env.CONSOLE_DIR}/package.json`);
const { chromium } = require("playwright-core");
const base = env.GATEWAY_URL;
const shots = env.SHOTS;

async function token() {
  const form = new URLSearchParams({
    grant_type: "client_credentials", client_id: env.CLIENT_ID, client_secret: env.CLIENT_SECRET,
  });
  const reply = await fetch(`${base}/v1/ignite/token`, { method: "POST", body: form });
  return (await reply.json()).access_token;
}

// Anonymous callers get no console data.
for (const path of [
  `/console/api/series?organization=${env.ORG}&app=${env.APP}`,
  `/v1/ignite/app/${env.ORG}`,
]) {
  const reply = await fetch(`${base}${path}`);
  assert.equal(reply.status, 401, `${path} answered ${reply.status} to an anonymous caller`);
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => m.type() === "error" && !/40[14]|Failed to load resource/.test(m.text()) && problems.push(m.text()));

  // Sign in with the keyboard.
  await page.goto(`${base}/console/`);
  await page.getByLabel("Client ID").waitFor();
  await page.screenshot({ path: `${shots}/01-sign-in.png`, fullPage: true });
  await page.keyboard.type(env.CLIENT_ID);
  await page.keyboard.press("Tab");
  await page.keyboard.type(env.CLIENT_SECRET);
  await page.keyboard.press("Tab");
  await page.keyboard.type(env.ORG);
  await page.keyboard.press("Enter");

  // The app list.
  await page.getByRole("heading", { name: `Apps of ${env.ORG}` }).waitFor();
  const row = page.locator("tr", { has: page.getByRole("link", { name: env.APP, exact: true }) });
  await row.waitFor();
  assert.equal(await row.getByTestId("active-version").innerText(), "2");
  await page.screenshot({ path: `${shots}/02-apps.png`, fullPage: true });
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0);
  assert.equal(await page.evaluate(() => document.cookie), "");

  // The app page; roll back to version 1 with confirmation.
  await page.getByRole("link", { name: env.APP, exact: true }).click();
  await page.getByTestId("app-active-version").filter({ hasText: "2" }).waitFor();
  await page.getByRole("button", { name: "Roll back to 1" }).waitFor();
  await page.screenshot({ path: `${shots}/03-app.png`, fullPage: true });
  await page.getByRole("button", { name: "Roll back to 1" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  await page.screenshot({ path: `${shots}/04-confirm-rollback.png` });
  await dialog.getByRole("button", { name: "Confirm" }).click();
  await page.getByTestId("app-active-version").filter({ hasText: /^1$/ }).waitFor();
  await page.getByText("Version 1 is active.").waitFor();
  await page.screenshot({ path: `${shots}/05-rolled-back.png`, fullPage: true });

  // The traffic, the tags with their URLs, and each version's settings.
  await page.getByTestId("traffic").filter({ hasText: "100%" }).waitFor();
  const tags = await page.getByTestId("tags").innerText();
  assert.match(tags, /canary → version 2/);
  assert.match(tags, new RegExp(`canary---${env.APP}-${env.ORG}\\.`));
  const v2 = await page.getByTestId("version-2").innerText();
  assert.match(v2, /SMALL/);
  assert.match(v2, /canary/);
  assert.match(v2, /GREETING/);
  assert.doesNotMatch(v2, /hidden-greeting-value/);

  // Promote version 2 again: all the traffic moves to it.
  await page.getByRole("button", { name: "Promote 2" }).click();
  await dialog.waitFor();
  await dialog.getByRole("button", { name: "Confirm" }).click();
  await page.getByTestId("app-active-version").filter({ hasText: /^2$/ }).waitFor();
  await page.getByText("Version 2 takes all the traffic.").waitFor();
  await page.screenshot({ path: `${shots}/05b-promoted.png`, fullPage: true });

  // A split made elsewhere shows with its shares.
  const split = await fetch(`${base}/v1/ignite/app/${env.ORG}/${env.APP}/traffic`, {
    method: "POST",
    headers: { Authorization: `Bearer ${await token()}`, "Content-Type": "application/json" },
    body: JSON.stringify({ traffic: [{ version: 1, percent: 90 }, { version: 2, percent: 10 }] }),
  });
  assert.equal(split.status, 200);
  await page.getByRole("link", { name: "← Apps" }).click();
  await page.getByRole("link", { name: env.APP, exact: true }).click();
  await page.getByTestId("traffic").filter({ hasText: "90%" }).filter({ hasText: "10%" }).waitFor();
  await page.getByTestId("app-active-version").filter({ hasText: /^1$/ }).waitFor();
  assert.match(await page.getByTestId("version-1").innerText(), /90%/);
  await page.getByTestId("traffic").scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${shots}/05c-traffic.png`, fullPage: true });

  // A chart renders from the platform's own data.
  const chart = page.getByTestId("chart").filter({ hasText: "Invocations" });
  await page.waitForFunction(() => {
    const line = document.querySelector('polyline[data-series="invocations"]');
    return line && line.getAttribute("points").split(" ").filter(Boolean).length >= 2;
  }, null, { timeout: 60000 });
  await chart.screenshot({ path: `${shots}/06-chart.png` });

  // A log line appears live while the panel follows.
  const logs = page.getByTestId("logs").first();
  const bearer = await token();
  const marker = 424242;
  // Give the follow stream a moment to be open before the line is made.
  await page.waitForTimeout(1500);
  const invoked = await fetch(`${base}/v1/ignite/app/${env.ORG}/${env.APP}/invoke`, {
    method: "POST",
    headers: { Authorization: `Bearer ${bearer}`, "Content-Type": "application/json" },
    body: JSON.stringify({ http: { method: "HTTP_METHOD_POST", path: "/" },
      body: Buffer.from(JSON.stringify({ n: marker })).toString("base64") }),
  });
  assert.equal(invoked.status, 200);
  await logs.filter({ hasText: `served ${marker}` }).waitFor({ timeout: 20000 });
  await logs.scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${shots}/07-live-logs.png`, fullPage: true });

  // An execution, its detail and its logs.
  await page.getByRole("link", { name: env.EXECUTION_ID }).click();
  await page.getByTestId("execution-status").filter({ hasText: "COMPLETED" }).waitFor();
  await page.getByTestId("logs").filter({ hasText: "served 7" }).waitFor({ timeout: 20000 });
  await page.screenshot({ path: `${shots}/08-execution.png`, fullPage: true });

  // An error state is explained: a missing app.
  await page.evaluate(() => (location.hash = "#/apps/no-such-app"));
  await page.getByRole("alert").filter({ hasText: "not found" }).first().waitFor();
  await page.screenshot({ path: `${shots}/09-error.png`, fullPage: true });
  // A reload signs out (the token was in memory only).
  await page.reload();
  await page.getByLabel("Client ID").waitFor();

  // An organization that does not exist is an error, for the platform
  // administrator too: never an empty list of apps.
  await page.getByLabel("Client ID").fill(env.CLIENT_ID);
  await page.getByLabel("Client secret").fill(env.CLIENT_SECRET);
  await page.getByLabel("Organization").fill(env.UNKNOWN_ORG);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: `Apps of ${env.UNKNOWN_ORG}` }).waitFor();
  await page.getByRole("alert").filter({ hasText: `organization ${env.UNKNOWN_ORG} not found` })
    .first().waitFor();
  assert.equal(await page.getByText("No apps yet").count(), 0);
  await page.screenshot({ path: `${shots}/10-unknown-organization.png`, fullPage: true });
  assert.deepEqual(problems, []);
} finally {
  await browser.close();
}
console.log("console e2e: ok");
