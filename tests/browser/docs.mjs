// Opens the bundle's /docs in headless Chromium and reports, as one JSON
// line, how many operations the page rendered, how many /docs.json has,
// and every console error or uncaught exception on the way.
// Usage: node tests/browser/docs.mjs <base-url> <screenshot.png>
import { chromium } from "playwright-core";

const [base, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", e => errors.push(String(e)));
  await page.goto(`${base}/docs`, { waitUntil: "load" });
  const rendered = await page.locator("details.op").count();
  // Each operation opened, so a body that cannot be drawn shows up as an error too.
  await page.locator("details.op").evaluateAll(ds => ds.forEach(d => { d.open = true; }));
  const emptyBodies = await page.locator("details.op").evaluateAll(ds =>
    ds.filter(d => d.querySelector(".body pre, .body p") === null).map(d => d.querySelector("summary").textContent));
  const doc = await (await fetch(`${base}/docs.json`)).json();
  const methods = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);
  const operations = Object.values(doc.paths).flatMap(p => Object.keys(p).filter(m => methods.has(m))).length;
  await page.screenshot({ path: screenshot, fullPage: false });
  console.log(JSON.stringify({ rendered, operations, errors, emptyBodies }));
} finally {
  await browser.close();
}
