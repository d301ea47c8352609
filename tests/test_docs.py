"""The offline documentation site (`make docs`, tools/build_docs.py), built once for this module.

Executing every notebook takes minutes, so the site here executes one cheap chapter (`01_data`, which prints tables
and reports) and renders the others from nbdev's processing alone (prose, code, `show_doc`). The checks are the
ones `tools/build_docs.py --check` runs on a full build (one worker process: `make test` gives pytest one core;
about 30 s of CPU): a page per notebook, no broken internal link or anchor, outputs and no error on executed pages,
every `_modidx` name in the API index. A broken copy of the site shows that the checker catches each kind of fault.
Headless Chromium opens the site from file:// (search included) and saves screenshots of the home page and a
tutorial to $IMGCLS_ARTIFACTS/docs (else a temp folder).
"""
import json, os, re, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import build_docs as bd

EXECUTED = '01_data'
pytest.importorskip('mkdocs', reason="the docs site needs the [docs] extra (pip install -e '.[docs]')")
pytest.importorskip('material', reason="the docs site needs the [docs] extra (pip install -e '.[docs]')")

@pytest.fixture(scope='module')
def site(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp('docs')
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])}
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'build_docs.py'), '--execute', EXECUTED, '--workers', '1',
                        '--out', str(tmp/'site'), '--proc', str(tmp/'proc')], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    print(r.stdout.splitlines()[-1])
    return tmp/'site'

@pytest.fixture(scope='module')
def pages() -> dict:
    return {str(nb.relative_to(bd.NBS)): bd.page_name(nb) for nb in bd.notebooks()}

def test_a_page_for_every_notebook_in_order(site, pages):
    "Globbed, not listed: a new chapter gets its page; chapters then tutorials in file order in the nav"
    nbs = sorted(p.relative_to(bd.NBS) for p in bd.NBS.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
    assert len(pages) == len(nbs) >= 20
    for rel, page in pages.items():
        html = (site/f'{page}.html').read_text()
        title = re.search(r'<h1[^>]*>(.*?)</h1>', html, re.S)
        assert title and title.group(1).strip(), f"{page}.html has no title"
    chapters = [p for r, p in pages.items() if re.match(r'\d\d_', r)]
    tutorials = [p for r, p in pages.items() if r.startswith('tutorials')]
    nav = re.findall(r'<a href="([^"#]+)\.html" class="md-nav__link', (site/'index.html').read_text())
    order = [n for n in nav if n in chapters + tutorials]
    assert list(dict.fromkeys(order)) == chapters + tutorials

def report(site) -> dict: return json.loads((site.parent/'proc'/'report.json').read_text())

def test_no_broken_link_or_anchor_and_api_index_complete(site, pages):
    "Every link and anchor resolves, every page shows the outputs its notebook has, every `_modidx` name is listed"
    r = report(site)
    assert r['executed'] == [bd.page_name(bd.NBS/f'{EXECUTED}.ipynb')] and r['errors'] == []
    assert bd.check_site(site, list(pages.values()), bd._modidx(), r['outputs'], r['executed']) == []

def test_executed_page_has_outputs_others_have_api_docs(site):
    data = (site/'data.html').read_text()
    assert data.count('class="nb-output') >= 5 and 'nb-error' not in data
    bundle = (site/'bundle.html').read_text()
    assert 'class="nb-output' not in bundle           # not executed: no stale or partial outputs
    text = re.sub(r'<[^>]+>', '', bundle)
    assert 'id="load_bundle"' in bundle and 'def load_bundle(' in text   # its show_doc, rendered

def test_checker_catches_faults(site, pages, tmp_path):
    "A missing page, a broken link, a broken anchor, an error output and a missing API entry are each reported"
    broken = Path(shutil.copytree(site, tmp_path/'site'))
    (broken/'losses.html').unlink()
    core = broken/'core.html'
    core.write_text(core.read_text().replace('</article>', '<a href="nope.html">x</a><a href="data.html#no-such">y</a>'
                                             '<div class="nb-output nb-error">boom</div></article>'))
    api = broken/'api.html'
    api.write_text(re.sub(r'<a href="[^"]*">\s*<code>load_bundle</code>\s*</a>', '', api.read_text()))
    data = broken/'data.html'
    data.write_text(data.read_text().replace('class="nb-output nb-image"', 'class="nb-image"', 1))
    probs = '\n'.join(bd.check_site(broken, list(pages.values()), bd._modidx(), report(site)['outputs'], ['core']))
    for want in ['no page losses.html', 'core.html: broken link nope.html', 'core.html: broken anchor data.html#no-such',
                 'core.html: an executed cell shows an error output', 'imgcls_nb.bundle.load_bundle is not listed',
                 'data.html: shows']:
        assert want in probs, (want, probs)

def test_in_chromium_from_file_url_with_search(site, tmp_path):
    "Opened as a local folder: the home page and a tutorial render, and search finds a name (screenshots kept)"
    from test_browser import missing_tools, CHROMIUM, REQUIRED
    why = [w for w in missing_tools() if 'jupyterlab' not in w]
    if why and REQUIRED: pytest.fail('IMGCLS_REQUIRE_BROWSER is set, but ' + '; '.join(why))
    if why: pytest.skip('; '.join(why))
    from playwright.sync_api import sync_playwright, expect
    out = Path(os.environ.get('IMGCLS_ARTIFACTS') or tmp_path/'artifacts')/'docs'
    out.mkdir(parents=True, exist_ok=True)
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=['--no-proxy-server'])
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        page.on('pageerror', lambda e: errors.append(str(e)))
        page.on('request', lambda r: r.url.startswith(('http:', 'https:')) and errors.append(f"network: {r.url}"))
        page.goto((site/'index.html').as_uri())
        expect(page.locator('h1').first).to_contain_text('imgcls_nb')
        expect(page.locator('table').first).to_be_visible()    # the README's tables (benchmarks) are on the home page
        page.screenshot(path=str(out/'home.png'), full_page=False)
        page.keyboard.press('/')                               # material's search shortcut
        page.keyboard.type('PreprocessSpec', delay=20)
        expect(page.locator('.md-search-result__meta')).to_contain_text(re.compile(r'[1-9]\d* matching'), timeout=30_000)
        expect(page.locator('.md-search-result__item a').first).to_be_visible()
        page.screenshot(path=str(out/'search.png'))
        page.goto((site/'tutorials'/'first_classifier.html').as_uri())
        expect(page.locator('h1').first).to_be_visible()
        page.screenshot(path=str(out/'tutorial.png'), full_page=False)
        browser.close()
    assert errors == []
