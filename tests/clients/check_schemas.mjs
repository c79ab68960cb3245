// Every tool schema Baton publishes, compiled by AJV (what the MCP Inspector validates with) in
// strict mode with the standard formats: an unknown format or keyword is an error here, where
// the Inspector would print a warning per schema. Reads `{"tools": [...]}` (tools/list) on stdin.
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text));
}));
const problems = [];
let checked = 0;
for (const tool of input.tools) {
  for (const [which, schema] of [["inputSchema", tool.inputSchema], ["outputSchema", tool.outputSchema]]) {
    if (!schema) continue;
    const ajv = new Ajv2020({ strict: true, allErrors: true, logger: false });
    addFormats(ajv);
    try {
      ajv.compile(schema);
      checked++;
    } catch (error) {
      problems.push(`${tool.name}.${which}: ${error.message}`);
    }
  }
}
console.log(JSON.stringify({ checked, problems }));
process.exit(problems.length === 0 ? 0 : 1);
