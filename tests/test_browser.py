"""The dashboards in a real browser: JupyterLab on loopback, headless Chromium driven by Playwright.

Opens a copy of the dashboard tutorial (`nbs/tutorials/05_dashboards.ipynb`, outputs cleared, one cell
appended that prints where things are), runs all of it from the Run menu (it trains its small model, builds
the dashboards on its own copy of the sample data, with a tiny local CLIP), then uses the dashboards as a
user would: uploads a real photo through the upload button and checks the predictions, clicks a confusion
cell and checks its thumbnails, quarantines an image with the cleaner's button and undoes it, checking the
files on disk. Screenshots go to $IMGCLS_ARTIFACTS (else a temp folder). Needs Debian's chromium (`apt-get install chromium`), `pip install playwright jupyterlab` and
no browser download. Skipped when those are missing, unless IMGCLS_REQUIRE_BROWSER is set (CI sets it):
then their absence is a failure."""
import csv, json, os, re, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

CHROMIUM = os.environ.get('IMGCLS_CHROMIUM', '/usr/bin/chromium')
REQUIRED = os.environ.get('IMGCLS_REQUIRE_BROWSER', '').strip().lower() not in ('', '0', 'false', 'no')
LOOPBACK = {'127.0.0.1', '::1'}

def missing_tools() -> list:
    why = []
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)): why.append(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    for mod, pkg in [('playwright.sync_api', 'playwright'), ('jupyterlab', 'jupyterlab'), ('jupyterlab_widgets', 'jupyterlab_widgets')]:
        try: __import__(mod)
        except ImportError: why.append(f"{pkg} is not installed (pip install {pkg})")
    return why

@pytest.fixture(scope='module')
def tools():
    why = missing_tools()
    if why and REQUIRED: pytest.fail("IMGCLS_REQUIRE_BROWSER is set, but " + '; '.join(why))
    if why: pytest.skip("real-browser test needs " + '; '.join(why) + " (set IMGCLS_REQUIRE_BROWSER=1 to make this a failure)")

# --- the notebook and the server ------------------------------------------------------------------------

TUTORIAL = Path(__file__).resolve().parents[1]/'nbs'/'tutorials'/'05_dashboards.ipynb'

# One cell appended to the copy: it prints where the tutorial put things, for the test to check on disk and in the page
PROBE = """# added by tests/test_browser.py
cm = res.confusion()
i = int(cm.diagonal().argmax())
print(f'BUSIEST {i} {i} {cm[i, i]} {explorer.max_images}')
print('DATA', data)
print('FIRST', cleaner.paths[0])
print('ALL' + 'DONE')"""

def notebook() -> dict:
    "A copy of the dashboard tutorial, outputs cleared, with the `PROBE` cell appended"
    nb = json.loads(TUTORIAL.read_text())
    for c in nb['cells']:
        if c['cell_type'] == 'code': c.update(outputs=[], execution_count=None)
    nb['cells'].append(dict(cell_type='code', execution_count=None, id='probe', metadata={}, outputs=[], source=PROBE))
    nb['metadata']['kernelspec'] = {'display_name': 'Python 3 (ipykernel)', 'language': 'python', 'name': 'python3'}
    return nb

def lab_settings(home:Path):
    "Render every cell of the notebook (JupyterLab's windowing would leave cells far below the view out of the page)"
    f = home/'settings'/'@jupyterlab'/'notebook-extension'/'tracker.jupyterlab-settings'
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({'windowingMode': 'none'}))

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def get(url:str, timeout:float=5):
    "GET without any proxy (everything here is on loopback)"
    return urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=timeout)

def start_lab(root:Path, home:Path, log) -> tuple:
    "JupyterLab on 127.0.0.1 with a token, its own config/runtime/temp folders, no browser; returns (process, url, token)"
    lab_settings(home); (home/'tmp').mkdir(exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'JUPYTER_CONFIG_DIR': str(home/'config'), 'JUPYTER_RUNTIME_DIR': str(home/'runtime'),
           'JUPYTERLAB_SETTINGS_DIR': str(home/'settings'), 'JUPYTERLAB_WORKSPACES_DIR': str(home/'workspaces'),
           'NO_PROXY': '127.0.0.1,localhost', 'no_proxy': '127.0.0.1,localhost', 'PYTHONUNBUFFERED': '1',
           'TMPDIR': str(home/'tmp')}  # the tutorial's tempfile.mkdtemp() lands in the test's own folder
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={port}',
           '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root}',
           '--ServerApp.terminals_enabled=False', '--LabApp.news_url=', '--LabApp.extension_manager=readonly',
           *(['--allow-root'] if os.geteuid() == 0 else [])]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None: raise RuntimeError(f"JupyterLab exited with {proc.returncode}; see {log.name}")
        try:
            if get(f'{url}/api/status?token={token}').status == 200: return proc, url, token
        except OSError: time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer on {url} within 90 s; see {log.name}")

def stop(proc):
    "Stop the server and its kernels (its own process group, started by this test)"
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(20)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait(10)

def start_kernel(url:str, token:str, path:str):
    "Open a session for the notebook through the REST API, so the page attaches to a running kernel without asking"
    body = json.dumps(dict(path=path, name=path, type='notebook', kernel=dict(name='python3'))).encode()
    req = urllib.request.Request(f'{url}/api/sessions', data=body, method='POST',
                                 headers={'Content-Type': 'application/json', 'Authorization': f'token {token}'})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=60) as r: return json.loads(r.read())

def dismiss(page):
    "Close what JupyterLab may pop up over the notebook: a kernel chooser (take the default) and the news question"
    for loc in (page.locator('.jp-Dialog .jp-mod-accept'), page.get_by_role('alert').get_by_role('button', name='No')):
        try:
            if loc.count() and loc.first.is_visible(): loc.first.click()
        except Exception: pass

def listening_addresses(pid:int) -> set:
    "Addresses that the process `pid` and its children listen on"
    import psutil
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return {c.laddr.ip for p in procs for c in p.net_connections(kind='inet') if c.status == psutil.CONN_LISTEN}

def printed(page, pattern:str) -> re.Match:
    "The match of `pattern` in what a cell printed (stdout outputs only)"
    rx = re.compile(pattern)
    return rx.search(page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stdout"]', has_text=rx).inner_text())

def wait_for_file(pred, timeout:float=30) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred(): return True
        time.sleep(0.25)
    return False

# --- the test -------------------------------------------------------------------------------------------------

@pytest.fixture
def artifacts(tmp_path) -> Path:
    d = Path(os.environ.get('IMGCLS_ARTIFACTS') or tmp_path/'artifacts')/'browser'
    d.mkdir(parents=True, exist_ok=True)
    return d

def test_dashboard_tutorial_in_jupyterlab(tools, tmp_path, artifacts):
    "Open the dashboard tutorial in JupyterLab, run it, then use its dashboards with the mouse"
    from playwright.sync_api import sync_playwright, expect
    import skimage.data
    from PIL import Image
    t0 = time.time()
    work, home = tmp_path/'lab', tmp_path/'home'
    work.mkdir(); home.mkdir()
    photo = tmp_path/'chelsea.jpg'
    Image.fromarray(skimage.data.chelsea()).save(photo, quality=90)
    (work/'05_dashboards.ipynb').write_text(json.dumps(notebook()))
    log = open(artifacts/'jupyterlab.log', 'w')
    proc, url, token = start_lab(work, home, log)
    start_kernel(url, token, '05_dashboards.ipynb')
    console = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=['--no-proxy-server'])
            page = browser.new_page(viewport={'width': 1500, 'height': 1100})
            page.set_default_timeout(60_000)
            page.on('console', lambda m: console.append(f"{m.type}: {m.text}"))
            page.goto(f'{url}/lab/tree/05_dashboards.ipynb?token={token}')
            page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=90_000)
            expect(page.get_by_text(re.compile(r'Python 3 \(ipykernel\) \| Idle'))).to_be_visible(timeout=90_000)  # kernel ready
            dismiss(page)
            assert listening_addresses(proc.pid) <= LOOPBACK, listening_addresses(proc.pid)

            page.locator('.lm-MenuBar-itemLabel', has_text=re.compile('^Run$')).click()
            page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
            expect(page.locator('.jp-OutputArea-output', has_text=re.compile('ALLDONE'))).to_be_visible(timeout=180_000)
            assert page.locator('.jp-OutputArea-output', has_text=re.compile('Traceback|Error:')).count() == 0, "a tutorial cell failed"
            data = Path(printed(page, r'DATA (\S+)').group(1))
            assert data.is_dir() and home/'tmp' in data.parents, data   # the tutorial's own copy of the sample data
            expect(page.locator('.imgcls-upload')).to_be_visible()
            page.screenshot(path=str(artifacts/'1-ran-all.png'), full_page=True)

            # upload a real photo through the FileUpload button (its <input type=file> is not in the DOM: use the chooser)
            with page.expect_file_chooser() as chooser:
                page.locator('.imgcls-upload').click()
            chooser.value.set_files(str(photo))
            results = page.locator('.imgcls-results')
            expect(results).to_contain_text('chelsea.jpg', timeout=60_000)
            expect(results).to_contain_text('fine-tuned')
            expect(results).to_contain_text('zero-shot')
            expect(results).to_contain_text(re.compile('agree|disagree'))
            expect(results).to_contain_text(re.compile(r'\d+\.\d%'))
            expect(page.locator('.imgcls-predict')).to_contain_text('1 image classified in')
            expect(results.locator('img').first).to_be_visible()
            results.scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts/'2-uploaded.png'), full_page=True)

            # click the fullest confusion cell (not the one the tutorial selected): its thumbnails appear
            i, j, n, most = map(int, printed(page, r'BUSIEST (\d+) (\d+) (\d+) (\d+)').groups())
            page.locator(f'.imgcls-cell-{i}-{j}').click()
            detail = page.locator('.imgcls-detail')
            expect(detail.locator('img')).to_have_count(min(n, most), timeout=30_000)
            expect(page.locator('.imgcls-confusion')).to_contain_text(f'{n} images of')
            detail.scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts/'3-confusion-cell.png'), full_page=True)

            # the cleaner's first card: quarantine moves the file on disk, undo brings it back
            first = Path(printed(page, r'FIRST (\S+)').group(1))
            quarantined = data.parent/f'{data.name}_quarantine'/first.relative_to(data)
            assert first.is_file()
            cleaner = page.locator('.imgcls-cleaner')
            cleaner.locator('button', has_text='quarantine').first.click()
            assert wait_for_file(lambda: quarantined.is_file() and not first.exists()), "quarantine click did not move the file"
            expect(cleaner).to_contain_text('quarantine: ')
            expect(page.get_by_text(re.compile(r'Python 3 \(ipykernel\) \| Idle'))).to_be_visible()  # the report is refreshed
            cleaner.scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts/'4-cleaner-quarantined.png'), full_page=True)
            cleaner.locator('button', has_text='undo').first.click()
            assert wait_for_file(lambda: first.is_file() and not quarantined.exists()), "undo click did not move the file back"
            log_file = data.parent/f'{data.name}_quarantine'/'actions.csv'
            def logged():
                with open(log_file, newline='') as f: return [r['action'] for r in csv.DictReader(f)]
            # the tutorial's four, then ours; the cleaner moves the file first and then appends the log row, so wait for it
            want = ['quarantine', 'relabel', 'undo', 'undo', 'quarantine', 'undo']
            assert wait_for_file(lambda: logged() == want), logged()
            browser.close()
    finally:
        stop(proc); log.close()
        (artifacts/'console.log').write_text('\n'.join(console))
    print(f"browser test: {time.time() - t0:.1f} s; screenshots and logs in {artifacts}")
