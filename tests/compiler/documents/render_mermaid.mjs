// Renders Mermaid files to SVG with the Mermaid CLI's own renderer, in one browser for all of
// them (a launch of Chromium takes seconds). Prints one JSON object: file -> null when it
// rendered (its SVG is written beside it, FILE.svg), or the error Mermaid raised (a syntax error
// among them).
//
// usage: CHECKERS_HOME=<node_modules' folder> CHROMIUM=/usr/bin/chromium node render_mermaid.mjs FILE...
import { readFile, writeFile } from "node:fs/promises";
import { load } from "./modules.mjs";

const { renderMermaid } = await load("@mermaid-js/mermaid-cli");
const puppeteer = (await load("puppeteer")).default;
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // Root in a container: Chromium's sandbox needs user namespaces that are not there.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const files = process.argv.slice(2);
const report = Object.fromEntries(files.map((file) => [file, "not rendered"]));

async function render(file) {
  try {
    const { data } = await renderMermaid(browser, await readFile(file, "utf8"), "svg", {});
    await writeFile(`${file}.svg`, data);
    report[file] = null;
  } catch (error) {
    report[file] = String(error && error.message ? error.message : error);
  }
}

// A few pages at a time: each waits on loading Mermaid as much as on the CPU.
const queue = [...files];
const worker = async () => {
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    await render(file);
  }
};
try {
  await Promise.all(Array.from({ length: 4 }, worker));
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
