// The checkers' packages live outside the checkout (tests/compiler/documents/tools.py installs
// them with `npm ci` into a cache folder), so the scripts beside this one load them from there.
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

const home = process.env.CHECKERS_HOME;
if (!home) {
  throw new Error("CHECKERS_HOME must name the folder holding node_modules");
}
const require = createRequire(path.join(home, "package.json"));

// The module namespace of an installed package; a CommonJS one's exports are also under `default`.
export async function load(name) {
  return import(pathToFileURL(require.resolve(name)).href);
}
