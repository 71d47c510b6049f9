"""The HTML reports in a real browser: headless Chromium (Debian's `chromium`) opens each report from disk, driven over
the DevTools protocol on a pipe (no extra Python package). Checks, for the reports of a shared model (quantize and
eval of EfficientNet-Lite0) and of the demo model (sensitivity):
  - the file is self-contained: no <script>, no address outside the file (http, https, a protocol-relative or file URL);
  - it loads with no console message of level error or warning, no uncaught exception, no log entry of level error;
  - the browser requests nothing but the page itself (no network request, no other file);
  - every chart (each <svg>) holds drawn marks: elements of class "mark" with a non-empty box, and as many charts as
    the run has weighted layers and activations.
usage: report_check.py SWIFTQ_BINARY [--screenshot PNG]   (the PNG: the top of the quantize report, for the README)
Prints PASS/FAIL lines, then 'N passed, N failed'."""
import base64, json, os, re, shutil, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shared_path import shared_dir, REPO, Tally

SWIFTQ = os.path.abspath(sys.argv[1])
SCREENSHOT = sys.argv[sys.argv.index('--screenshot') + 1] if '--screenshot' in sys.argv else None
SHARED = shared_dir()
tmp = tempfile.mkdtemp(prefix='swiftq-report-')

tally = Tally()
check = tally.check

def swiftq(*args):
    r = subprocess.run([SWIFTQ, *args], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        sys.exit(f"swiftq {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
    return r

class Browser:
    """Chromium with --remote-debugging-pipe: JSON messages separated by NUL bytes, written to its fd 3 and read from
    its fd 4."""
    def __init__(self):
        exe = shutil.which('chromium') or shutil.which('chromium-browser')
        if not exe:
            sys.exit('chromium not found (make report-check installs Debian\'s chromium package)')
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()
        args = [exe, '--headless', '--remote-debugging-pipe', '--disable-gpu', '--hide-scrollbars', '--no-first-run',
                '--no-default-browser-check', '--disable-extensions', '--disable-background-networking',
                '--disable-component-update', '--disable-sync', '--mute-audio', f'--user-data-dir={tmp}/profile', 'about:blank']
        if os.geteuid() == 0:
            args.insert(1, '--no-sandbox')
        def fds():  # the pipe ends to fds 3 and 4 (by way of fresh numbers, so that neither overwrites the other)
            r, w = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(r, 3); os.dup2(w, 4)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(3, 4), preexec_fn=fds)
        os.close(to_browser_r); os.close(from_browser_w)
        self.buffer, self.next_id, self.events = b'', 0, []

    def send(self, method, params=None, session=None, timeout=60):
        self.next_id += 1
        msg = {'id': self.next_id, 'method': method, 'params': params or {}}
        if session: msg['sessionId'] = session
        os.write(self.to_browser, json.dumps(msg).encode() + b'\0')
        deadline = time.time() + timeout
        while True:
            m = self.receive(deadline)
            if m.get('id') == self.next_id:
                if 'error' in m: raise RuntimeError(f"{method}: {m['error']}")
                return m.get('result', {})
            self.events.append(m)

    def receive(self, deadline):
        import select
        while b'\0' not in self.buffer:
            left = deadline - time.time()
            if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                raise TimeoutError('chromium did not answer in time')
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk: raise RuntimeError('chromium closed the pipe')
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b'\0', 1)
        return json.loads(line)

    def wait_for(self, method, session, timeout=60):
        deadline = time.time() + timeout
        while True:
            for e in self.events:
                if e.get('method') == method and e.get('sessionId') == session: return e
            self.events.append(self.receive(deadline))

    def drain(self, seconds):
        deadline = time.time() + seconds
        try:
            while True: self.events.append(self.receive(deadline))
        except TimeoutError:
            pass

    def close(self):
        try: self.send('Browser.close', timeout=10)
        except Exception: pass
        try: self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired: self.proc.kill()

MARKS_JS = """JSON.stringify(Array.from(document.querySelectorAll('svg')).map(svg => ({
  label: svg.getAttribute('aria-label'),
  marks: Array.from(svg.querySelectorAll('.mark')).filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0 }).length })))"""

def open_report(browser, path, expect_charts, name, screenshot=None):
    text = open(path, encoding='utf-8').read()
    outside = re.findall(r'''(?:https?:|file:|(?:src|href)\s*=\s*["']//)[^"'\s)<]*''', text)
    check(f'{name}: self-contained', '<script' not in text.lower() and not outside and '@import' not in text and 'url(' not in text,
          f'{len(text)} bytes' + (f'; addresses: {outside[:3]}' if outside else ''))
    target = browser.send('Target.createTarget', {'url': 'about:blank'})['targetId']
    session = browser.send('Target.attachToTarget', {'targetId': target, 'flatten': True})['sessionId']
    for domain in ('Page', 'Runtime', 'Log', 'Network'):
        browser.send(f'{domain}.enable', session=session)
    browser.send('Emulation.setDeviceMetricsOverride', {'width': 1280, 'height': 1800, 'deviceScaleFactor': 1, 'mobile': False}, session=session)
    browser.events = []
    url = 'file://' + os.path.abspath(path)
    browser.send('Page.navigate', {'url': url}, session=session)
    browser.wait_for('Page.loadEventFired', session)
    browser.drain(1.0)
    mine = [e for e in browser.events if e.get('sessionId') == session]
    console = [e['params'] for e in mine if e['method'] == 'Runtime.consoleAPICalled' and e['params']['type'] in ('error', 'warning', 'assert')]
    exceptions = [e['params'] for e in mine if e['method'] == 'Runtime.exceptionThrown']
    logs = [e['params']['entry'] for e in mine if e['method'] == 'Log.entryAdded' and e['params']['entry']['level'] in ('error', 'warning')]
    check(f'{name}: no console error', not console and not exceptions and not logs,
          '; '.join(str(x)[:200] for x in console + exceptions + logs)[:600])
    requests = [e['params']['request']['url'] for e in mine if e['method'] == 'Network.requestWillBeSent']
    check(f'{name}: no request but the page', requests == [url], f'requests: {requests[:5]}')
    r = browser.send('Runtime.evaluate', {'expression': MARKS_JS, 'returnByValue': True}, session=session)
    charts = json.loads(r['result']['value'])
    empty = [c['label'] for c in charts if c['marks'] == 0]
    check(f'{name}: every chart drawn', len(charts) >= expect_charts and not empty,
          f"{len(charts)} charts (expected at least {expect_charts}), {sum(c['marks'] for c in charts)} marks" + (f'; empty: {empty[:5]}' if empty else ''))
    if screenshot:
        # The top of the page (summary, the weights table, the first per-channel charts) above the first activation
        # histograms, in one PNG.
        grid = browser.send('Runtime.evaluate', {'expression': "document.querySelector('#activations .legend').getBoundingClientRect().top + window.scrollY",
                                                 'returnByValue': True}, session=session)['result']['value']
        parts = []
        for y, h in ((0, 1090), (grid - 8, 720)):
            shot = browser.send('Page.captureScreenshot', {'format': 'png', 'captureBeyondViewport': True,
                                                           'clip': {'x': 0, 'y': y, 'width': 1280, 'height': h, 'scale': 1}}, session=session)
            parts.append(base64.b64decode(shot['data']))
        from PIL import Image
        import io
        images = [Image.open(io.BytesIO(p)).convert('RGB') for p in parts]
        sheet = Image.new('RGB', (1280, sum(i.height for i in images) + 12), 'white')
        sheet.paste(images[0], (0, 0)); sheet.paste(images[1], (0, images[0].height + 12))
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
        # A palette PNG is a third of the size and looks the same (flat colours, antialiased text).
        sheet.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(screenshot, optimize=True)
        print(f'wrote {screenshot}')
    browser.send('Target.closeTarget', {'targetId': target})

model = os.path.join(SHARED, 'models', 'efficientnet-lite0.onnx')
calib, val = os.path.join(SHARED, 'images', 'calib'), os.path.join(SHARED, 'images', 'val')
q = os.path.join(tmp, 'efficientnet-lite0.int8.onnx')
qj = json.loads(swiftq('quantize', model, '--calib', calib, '--calib-limit', '100', '--preset', 'effnet-lite', '-o', q,
                       '--report', os.path.join(tmp, 'quantize.html'), '--json', '-').stdout)
swiftq('eval', model, q, '--data', val, '--labels', os.path.join(val, 'labels.txt'), '--limit', '100', '--report', os.path.join(tmp, 'eval.html'))
demo = os.path.join(REPO, 'Fixtures', 'digits')
swiftq('sensitivity', os.path.join(demo, 'digits.onnx'), '--calib', os.path.join(demo, 'train'), '--data', os.path.join(demo, 'test'),
       '--weight-bits', '4', '--limit', '100', '--report', os.path.join(tmp, 'sensitivity.html'))

browser = Browser()
try:
    open_report(browser, os.path.join(tmp, 'quantize.html'), len(qj['layers']) + 1, 'quantize report (EfficientNet-Lite0)', SCREENSHOT)
    open_report(browser, os.path.join(tmp, 'eval.html'), 1, 'eval report (EfficientNet-Lite0 fp32 vs int8)')
    open_report(browser, os.path.join(tmp, 'sensitivity.html'), 1, 'sensitivity report (digits)')
finally:
    browser.close()
shutil.rmtree(tmp, ignore_errors=True)
tally.finish()
