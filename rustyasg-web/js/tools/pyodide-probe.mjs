// Does RustyASG's core run in Pyodide? Boots the npm `pyodide` package in node, puts
// rustyasg-core's source and the pure-Python wheels given on the command line into its file
// system, then tries numpy, rustyasg.core and the reference backend. Prints a JSON report.
//
//   npm install                       # the pinned pyodide devDependency
//   pip download pluggy stevedore --no-deps --only-binary=:all: -d /tmp/wheels
//   node tools/pyodide-probe.mjs ../../rustyasg-core/src /tmp/wheels/*.whl
import { loadPyodide } from "pyodide";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { basename, join, relative } from "node:path";

const [coreSrc, ...wheels] = process.argv.slice(2);
const py = await loadPyodide();
function copyTree(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const target = "/src/" + relative(coreSrc, path);
    if (statSync(path).isDirectory()) {
      if (name !== "__pycache__") { py.FS.mkdirTree(target); copyTree(path); }
    } else if (name.endsWith(".py")) py.FS.writeFile(target, readFileSync(path));
  }
}
py.FS.mkdirTree("/src");
copyTree(coreSrc);
for (const w of wheels) py.FS.writeFile("/tmp/" + basename(w), readFileSync(w));
// loadPackage fetches wheels that the npm package does not ship from the Pyodide CDN; without
// network access it logs the failure, and the import below tells whether numpy is there.
await py.loadPackage("numpy", { messageCallback: () => {}, errorCallback: () => {} });
const report = await py.runPythonAsync(`
import glob, json, sys, zipfile
for w in glob.glob('/tmp/*.whl'):
    zipfile.ZipFile(w).extractall('/site')
sys.path[:0] = ['/site', '/src']
report = {'python': sys.version.split()[0], 'platform': sys.platform}
def attempt(name, fn):
    try:
        report[name] = fn()
    except Exception as exc:
        report[name] = f'{type(exc).__name__}: {exc}'
attempt('pluggy', lambda: __import__('pluggy').__version__)
attempt('stevedore', lambda: __import__('stevedore') and 'imported')
attempt('numpy', lambda: __import__('numpy').__version__)
def reference():
    import numpy as np, rustyasg.core as rg
    x = rg.input((2,), 'float64', name='x')
    return rg.evaluate((x * 3).sum(), {x: np.array([1.0, 2.0])}, backend='reference').tolist()
attempt('rustyasg.core + reference backend', reference)
json.dumps(report)
`);
console.log(JSON.stringify({ pyodide: py.version, ...JSON.parse(report) }, null, 1));
