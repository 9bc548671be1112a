// Bundles every widget (src/<name>.js, lightweight-charts included, and src/<name>.css) into the Python package's
// static/ folder, then writes static/STAMP: the sha256 of the sources it was built from and of each output.
// tests/lab/test_bundle.py computes the same digests; keep the two in step.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "pxkit", "lab", "static");

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

// sha256 over (relative path, NUL, length, NUL, bytes) of each file, in sorted path order.
function digest(paths, base) {
  const hash = createHash("sha256");
  for (const rel of paths.map((p) => relative(base, p).split("\\").join("/")).sort()) {
    const bytes = readFileSync(join(base, rel));
    hash.update(`${rel}\0${bytes.length}\0`);
    hash.update(bytes);
  }
  return hash.digest("hex");
}

const started = performance.now();
const entries = readdirSync(join(here, "src"))
  .filter((name) => /\.(js|css)$/.test(name))
  .map((name) => join(here, "src", name));
await build({
  entryPoints: entries,
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  legalComments: "eof",
  outdir: out,
  logLevel: "warning",
});
const sources = [...files(join(here, "src")), ...["package.json", "package-lock.json", "build.mjs"].map((n) => join(here, n))];
const outputs = entries.map((p) => join(out, p.slice(p.lastIndexOf("/") + 1)));
const lines = [`sources ${digest(sources, here)}`, ...outputs.map((p) => `${relative(out, p)} ${digest([p], out)}`)];
writeFileSync(join(out, "STAMP"), lines.join("\n") + "\n");
for (const p of outputs) console.log(`${relative(out, p)} ${statSync(p).size} bytes`);
console.log(`built in ${Math.round(performance.now() - started)} ms`);
