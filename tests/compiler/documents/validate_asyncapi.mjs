// Validates AsyncAPI documents with the AsyncAPI project's own parser (@asyncapi/parser), the one
// its CLI and Studio use: the JSON Schema of the specification and of its bindings, then its
// Spectral rules. Prints one JSON object: file -> its diagnostics, each {severity, code, message,
// path}, severity as Spectral counts it (0 error, 1 warning, 2 information, 3 hint).
//
// usage: CHECKERS_HOME=<the folder holding node_modules> node validate_asyncapi.mjs FILE...
import { readFile } from "node:fs/promises";
import { load } from "./modules.mjs";

const parserModule = await load("@asyncapi/parser");
const Parser = parserModule.Parser ?? parserModule.default.Parser;
const parser = new Parser();
const report = {};
for (const file of process.argv.slice(2)) {
  const { diagnostics } = await parser.parse(await readFile(file, "utf8"), { source: file });
  report[file] = diagnostics.map((d) => ({
    severity: d.severity,
    code: String(d.code),
    message: d.message,
    path: d.path.join("."),
  }));
}
process.stdout.write(JSON.stringify(report) + "\n");
