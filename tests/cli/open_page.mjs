// Opens one page in Debian's chromium (headless, no browser download) with
// playwright-core from console/node_modules, waits until the page's own
// script replaced the text of #answer, and prints that text.
import { createRequire } from "node:module";

const require = createRequire(`${process.env.CONSOLE_DIR}/package.json`);
const { chromium } = require("playwright-core");
const url = process.argv[2];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(url);
  const answer = page.locator("#answer");
  await page.waitForFunction(
    () => document.getElementById("answer")?.textContent !== "asking...", null, { timeout: 60000 },
  );
  if (problems.length) throw new Error(problems.join("\n"));
  process.stdout.write(await answer.textContent());
} finally {
  await browser.close();
}
