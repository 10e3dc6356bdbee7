// Builds the dashboard into dashboard/dist (git-ignored), the folder
// wrangler.toml's [assets] serves at /: one minified script, one stylesheet
// and the page, nothing fetched from elsewhere at run time. Prints each
// file's size raw and gzip. Run by scripts/build and by wrangler's [build].
import { execFileSync } from "node:child_process";
import { build } from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = dirname(fileURLToPath(import.meta.url));
const src = join(root, "src");
const dist = join(root, "dist");
// esbuild only strips the types: tsc checks them first, and a type error
// fails the build.
execFileSync(join(root, "../node_modules/.bin/tsc"), ["-p", join(root, "tsconfig.json")], { stdio: "inherit" });
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);

await build({
  entryPoints: { app: join(src, "main.tsx") },
  outdir: dist,
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  jsx: "automatic",
  jsxImportSource: "preact",
  // uPlot's stylesheet comes in through the app's own.
  loader: { ".css": "css" },
  legalComments: "none",
  logLevel: "warning",
});
writeFileSync(join(dist, "index.html"), readFileSync(join(src, "index.html")));

let total = 0;
for (const name of readdirSync(dist).sort()) {
  const bytes = readFileSync(join(dist, name));
  const gz = gzipSync(bytes, { level: 9 }).length;
  total += gz;
  console.log(`dashboard ${name}: ${statSync(join(dist, name)).size} bytes raw, ${gz} bytes gzip`);
}
console.log(`dashboard total: ${total} bytes gzip (${(total / 1024).toFixed(1)} KiB)`);
