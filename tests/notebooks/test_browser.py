"""The notebooks as a student sees them: JupyterLab in headless Chromium (driven through
chromedriver's WebDriver protocol), Run All in the smoke profile, and for every code cell:
it ran (an execution count, no error or panic in its output) and the figures it showed
are all visible in the page. What a cell showed is counted by the markers
`hw4::show::display` prints when HW4_FIGURE_MARKERS is set (the runner's mechanism);
what is visible is counted in the page's rendered outputs. Screenshots of every cell
with a figure go to outputs/ui/.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian's chromium and
chromium-driver, installed by scripts/setup). Without them the test is skipped with one
line, except when HW4_REQUIRE_BROWSER=1 (CI), where that is a failure.
"""
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "outputs" / "ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOWN = "\u2064\u2063\u2064\u2063\u2064"  # hw4::show::SHOWN_MARKER (invisible)
NOTEBOOKS = ["Quickstart", "GAN-VAE"]
RUN_TIMEOUT = 1800


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


class WebDriver:
    """The few WebDriver commands the test needs (W3C protocol over HTTP)."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"]}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"WebDriver {method} {path}: {e.read()[:500]!r}") from None

    def go(self, url):
        self.call("POST", f"/session/{self.session}/url", {"url": url})

    def js(self, script, *args):
        return self.call("POST", f"/session/{self.session}/execute/sync", {"script": script, "args": list(args)})

    def screenshot(self, path):
        png = base64.b64decode(self.call("GET", f"/session/{self.session}/screenshot"))
        path.write_bytes(png)

    def quit(self):
        try:
            self.call("DELETE", f"/session/{self.session}")
        except Exception:
            pass


# Per code cell: its prompt, the text of its outputs, and what is visible in them.
CELLS_JS = """
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
if (!panel) return null;
return [...panel.querySelectorAll('.jp-Cell.jp-CodeCell')].map(cell => {
  const prompt = (cell.querySelector('.jp-InputArea-prompt') || {}).textContent || '';
  const outs = [...cell.querySelectorAll('.jp-OutputArea-output')];
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 2 && r.height > 2; };
  const figures = outs.filter(o => o.matches('.jp-RenderedImage, .jp-RenderedSVG, .jp-RenderedMarkdown, .jp-RenderedHTMLCommon')
      && (o.querySelector('img, svg, table') || o.textContent.trim()) && visible(o)).length;
  const text = outs.map(o => o.textContent).join('\\n');
  return {prompt: prompt.trim(), text, figures,
          errors: cell.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]').length};
});
"""


def browser_missing():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    return f"no {' or '.join(missing)} here (Debian packages chromium, chromium-driver)" if missing else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    why = browser_missing()
    if why:
        if os.environ.get("HW4_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser test required (HW4_REQUIRE_BROWSER=1) but {why}")
        pytest.skip(f"browser test skipped: {why}")
    UI.mkdir(parents=True, exist_ok=True)
    # Copies of the notebooks under outputs/ (JupyterLab saves into what it opens; the
    # user's notebooks are not touched). Two folders deep, like the runner tests, so that
    # `:dep hw4` points at the project and reuses the warm build.
    work = UI / "notebooks"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for name in NOTEBOOKS:
        nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        for c in nb.cells:
            c.source = c.source.replace(':dep hw4 = { path = ".." }', ':dep hw4 = { path = "../../.." }')
        nbformat.write(nb, work / f"{name}.ipynb")
    settings = tmp_path_factory.mktemp("lab-settings")
    # Render every cell (no windowing), so that the page holds all outputs at once.
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    port, token = free_port(), "hw4-ui-test"
    # The kernels write under outputs/ui/outputs, never over the results in outputs/.
    env = dict(os.environ, HW4_PROFILE="smoke", HW4_FIGURE_MARKERS="1", HW4_OUTPUT_DIR=str(UI / "outputs"),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTER_CONFIG_DIR=str(settings / "config"))
    log = open(UI / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", f"--notebook-dir={work}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.open_browser=False"] + (["--allow-root"] if os.geteuid() == 0 else []),
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    dport = free_port()
    driver_proc = subprocess.Popen([CHROMEDRIVER, f"--port={dport}"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    driver = None
    try:
        wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", 120)
        wait_http(f"http://127.0.0.1:{dport}/status", 60)
        driver = WebDriver(dport)
        yield driver, f"http://127.0.0.1:{port}", token
    finally:
        if driver:
            driver.quit()
        driver_proc.terminate()
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def wait_for(driver, what, check, timeout, every=1.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    driver.screenshot(UI / "timeout.png")
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (screenshot outputs/ui/timeout.png)")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_run_all_in_jupyterlab_shows_every_figure(lab, name):
    driver, base, token = lab
    driver.go(f"{base}/lab/tree/{name}.ipynb?token={token}&reset")
    wait_for(driver, "the notebook and its kernel", lambda: driver.js(
        "const a = window.jupyterapp; const w = a && a.shell.currentWidget;"
        "return !!(w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
        " && w.sessionContext.session.kernel.connectionStatus === 'connected' && document.querySelector('.jp-CodeCell'));"),
        180)
    t0 = time.time()
    driver.js("window.jupyterapp.commands.execute('notebook:run-all-cells');")

    def finished():
        cells = driver.js(CELLS_JS)
        if not cells:
            return None
        if any(c["prompt"] in ("[*]:", "[ ]:", "[]:", "") for c in cells):
            return None
        idle = driver.js("const w = window.jupyterapp.shell.currentWidget;"
                         "return w.sessionContext.session.kernel.status === 'idle';")
        return cells if idle else None

    cells = wait_for(driver, f"{name}: Run All", finished, RUN_TIMEOUT, every=2.0)
    sys.stderr.write(f"[ui] {name}: Run All took {time.time() - t0:.1f}s\n")
    report = []
    for i, c in enumerate(cells):
        shown = c["text"].count(SHOWN)
        report.append((i, c["prompt"], shown, c["figures"]))
        assert re.fullmatch(r"\[\d+\]:", c["prompt"]), f"{name}: code cell {i} did not run: {c['prompt']!r}"
        assert c["errors"] == 0 and "panicked at" not in c["text"] and not re.search(r"^Error:", c["text"], re.M), \
            f"{name}: code cell {i} failed:\n{c['text'][-1500:]}"
        if shown or c["figures"]:
            driver.js(f"document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell')[{i}]"
                      ".querySelector('.jp-OutputArea').scrollIntoView({block: 'center'});")
            time.sleep(0.3)
            driver.screenshot(UI / f"{name}-cell{i:02d}.png")
    (UI / f"{name}-figures.json").write_text(json.dumps(
        [{"code_cell": i, "prompt": p, "shown": s, "visible": v} for i, p, s, v in report], indent=1))
    sys.stderr.write("".join(f"[ui] {name} code cell {i} {p}: shown {s}, visible {v}\n"
                             for i, p, s, v in report if s or v))
    lost = [(i, s, v) for i, _, s, v in report if s != v]
    assert not lost, f"{name}: figures shown vs visible differ in code cells {lost}"
    assert sum(s for _, _, s, _ in report) > 0, f"{name}: no figure was shown at all"
