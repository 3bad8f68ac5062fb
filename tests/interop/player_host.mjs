// Drives Debian's Chromium (playwright-core, no browser download) through tests/player_host/host.html for
// tests/test_player.py: waits until the view plays the video, then prints what the host saw as JSON and keeps a
// screenshot. Usage: node player_host.mjs <host url> <screenshot path>; CHROMIUM names the browser binary.
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
});
const consoleLines = [];
try {
  const page = await browser.newPage({ viewport: { width: 760, height: 620 } });
  page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => consoleLines.push(`pageerror: ${error.message}`));
  await page.goto(url);
  let played = true;
  try {
    await page.waitForFunction(() => window.hostLog && window.hostLog.states.includes("playing"), null, { timeout: 45000 });
    await page.waitForTimeout(700); // a few frames on screen for the screenshot
  } catch {
    played = false;
  }
  const frame = page.frames().find((f) => f !== page.mainFrame());
  const video = frame ? await frame.evaluate(() => {
    const v = document.getElementById("video");
    return v ? { src: v.currentSrc, currentTime: v.currentTime, paused: v.paused, readyState: v.readyState,
      error: v.error && v.error.code } : null;
  }) : null;
  await page.screenshot({ path: screenshot });
  const log = await page.evaluate(() => window.hostLog);
  console.log(JSON.stringify({ played, ...log, video, console: consoleLines }));
} finally {
  await browser.close();
}
