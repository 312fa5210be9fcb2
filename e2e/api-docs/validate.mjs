// Validates an OpenAPI and an AsyncAPI document with the reference parsers of each ecosystem,
// so the generated documents are not only stable (the drift tests) but also valid, and every
// $ref resolves. Errors fail; warnings are printed (a document should have none).
//
// Usage: node validate.mjs <openapi.json> <asyncapi.json>

import { readFileSync } from "node:fs";

import SwaggerParser from "@apidevtools/swagger-parser";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const [openapiPath, asyncapiPath] = process.argv.slice(2);
if (!openapiPath || !asyncapiPath) {
  console.error("usage: node validate.mjs <openapi.json> <asyncapi.json>");
  process.exit(2);
}
let failed = false;

try {
  const api = await SwaggerParser.validate(openapiPath);
  console.log(`  ok - ${openapiPath} is a valid OpenAPI ${api.openapi} document (${Object.keys(api.paths ?? {}).length} paths)`);
} catch (error) {
  failed = true;
  console.error(`FAIL: ${openapiPath} is not a valid OpenAPI document: ${error instanceof Error ? error.message : error}`);
}

const { document, diagnostics } = await new Parser().parse(readFileSync(asyncapiPath, "utf8"));
const name = (severity) => ["error", "warning", "info", "hint"][severity] ?? String(severity);
for (const d of diagnostics) {
  // The parser recommends the newest AsyncAPI version as "info"; Confab pins 3.0 on purpose.
  if (d.severity === DiagnosticSeverity.Information || d.severity === DiagnosticSeverity.Hint) continue;
  console.error(`  ${name(d.severity)} ${d.code} at ${d.path.join(".") || "(root)"}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
if (!document || errors.length > 0) {
  failed = true;
  console.error(`FAIL: ${asyncapiPath} is not a valid AsyncAPI document (${errors.length} errors)`);
} else {
  const operations = document.operations().length;
  const messages = document.allMessages().length;
  console.log(`  ok - ${asyncapiPath} is a valid AsyncAPI ${document.version()} document (${operations} operations, ${messages} messages)`);
}
process.exit(failed ? 1 : 0);
