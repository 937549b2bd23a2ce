// Opens a connlab report in Debian's chromium (puppeteer-core from report/node_modules) and prints
// what a reader sees as JSON: the counts, whether a PNG attachment renders, and every request the
// page made to anything but the file itself (none may leave the machine).
// usage: node report_browser.cjs TOOLS_DIR INDEX_HTML TEST_ID SCREENSHOT_PNG
const path = require("path");
const [tools, index, testId, screenshot] = process.argv.slice(2);
const puppeteer = require(path.join(tools, "node_modules", "puppeteer-core"));

const LOCAL = /^(file|data|blob|about|chrome|devtools):/;

(async () => {
  const browser = await puppeteer.launch({
    executablePath: "/usr/bin/chromium", headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-default-apps"],
  });
  const remote = [];
  const out = {};
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });
    page.on("request", (request) => { if (!LOCAL.test(request.url())) remote.push(request.url()); });
    const url = "file://" + index;
    await page.goto(url, { waitUntil: "load", timeout: 60000 });
    await page.waitForSelector('[data-testid="metadata-item-total"]', { timeout: 60000 });
    for (const key of ["total", "passed", "failed"]) {
      out[key] = await page.$eval(`[data-testid="metadata-item-${key}"]`, (e) => e.innerText.replace(/\s+/g, " ").trim());
    }
    await page.goto(url + "#/" + testId, { waitUntil: "load", timeout: 60000 });
    const row = await page.waitForSelector("xpath/.//*[normalize-space(text())='errors-by-errno']", { timeout: 60000 })
      .catch(() => null);
    if (row) {
      await row.click();
      await page.waitForFunction(() => [...document.images].some((i) => i.naturalWidth > 300 && !i.src.startsWith("data:image/svg")),
                                 { timeout: 30000 }).catch(() => null);
    }
    out.plot = await page.evaluate(() => [...document.images].filter((i) => i.naturalWidth > 300 && !i.src.startsWith("data:image/svg"))
                                   .map((i) => ({ width: i.naturalWidth, height: i.naturalHeight, src: i.src.slice(0, 16) })));
    out.title = await page.title();
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: false });
  } finally {
    await browser.close();
  }
  out.remote_requests = remote;
  console.log(JSON.stringify(out));
})().catch((error) => { console.error(String(error && error.stack || error)); process.exit(1); });
