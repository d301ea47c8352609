#!/usr/bin/env python
"""Build the offline documentation site (`make docs`): the notebooks in `nbs/` -> `_proc/` -> `_docs/`.

1. nbdev's own notebook processing (`nbdev.processors.FilterDefaults`, what `nbdev.serve.proc_nbs` runs before
   Quarto): directives applied, `show_doc` added after every exported definition and rendered, links to the API
   added. One processor is swapped: instead of running only the cells `show_doc` needs, the notebook is executed
   top to bottom (the cells `nbdev-test` runs; `#| slow` / `#| notest` / `#| eval: false` are left out) in the
   notebook's own folder, so pages carry their outputs. The processed notebooks are written to `_proc/`.
2. Each processed notebook becomes a Markdown page (`_proc/_md/`): figures as files, tables as HTML, dashboards
   as a static view rebuilt from the widget state, errors marked; plus an API index of every name in `_modidx`.
3. mkdocs-material renders `_proc/_md/` into `_docs/` with the `offline` plugin: search works from a folder
   opened as file://, no font or script comes from the network. The site is built in a temporary folder and
   renamed into place.

    python tools/build_docs.py                    # execute every notebook, build _docs/
    python tools/build_docs.py --check            # ... and fail on a missing page, broken link, error output
    python tools/build_docs.py --execute 00_core,03_bundle --out /tmp/site --check   # execute only these
"""
import argparse, base64, html, json, os, re, shutil, subprocess, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from html.parser import HTMLParser
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
MKDOCS_YML = ROOT/'mkdocs.yml'
ASSETS = ROOT/'tools'/'docs_assets'   # the site's CSS and the vendored iframe-worker shim (search from file://)

# --- which notebooks, in which order, as which page ----------------------------------------------------------

def notebooks(nbs:Path=NBS) -> list:
    "Every notebook under `nbs` in reading order: the home page, the chapters, then each subfolder (tutorials)"
    nbs_ = [p for p in nbs.rglob('*.ipynb')
            if not any(part.startswith(('.', '_')) for part in p.relative_to(nbs).parts)]
    def key(p):
        rel = p.relative_to(nbs)
        return (p.name != 'index.ipynb' or len(rel.parts) > 1, len(rel.parts) > 1, rel.parts)
    return sorted(nbs_, key=key)

def page_name(nb:Path, nbs:Path=NBS) -> str:
    "The page a notebook becomes, as nbdev names it: `tutorials/01_first_classifier.ipynb` -> `tutorials/first_classifier`"
    rel = nb.relative_to(nbs)
    return str(rel.with_name(re.sub(r'^\d+[a-z]?_', '', rel.stem)))

def slug(text:str, separator:str='-') -> str:
    """The anchor Quarto (and so nbdev's `_modidx`) gives a heading: `BaseClassifier.predict` -> `baseclassifier.predict`.
    mkdocs.yml makes it the toc extension's `slugify`."""
    text = re.sub(r'<[^>]+>|`', '', text).strip().lower()
    return re.sub(r'[^\w.\-]', '', re.sub(r'\s+', '-', text))

# --- 1. nbdev's processing, with the notebook executed -------------------------------------------------------

def _processors(execute:bool):
    "nbdev's `FilterDefaults`, with `exec_show_docs` replaced by a processor that runs every tested cell"
    from nbdev.processors import FilterDefaults, exec_show_docs, _do_eval, _is_showdoc
    from nbdev.test import _skip_cell
    from nbdev.config import get_config

    class exec_cells(exec_show_docs):
        "Execute the notebook (`execute`) or only what `show_doc` needs; record error outputs instead of raising"
        errors = []
        def begin(self):
            super().begin()
            flags = get_config().tst_flags
            self.skip = _skip_cell(self.nb, flags.split() if isinstance(flags, str) else flags)
        def __call__(self, cell):
            if cell.cell_type != 'code' or not hasattr(self, 'k'): return
            is_doc = bool(_is_showdoc(cell))
            if execute: run = not self.skip(cell) or is_doc
            else: run = is_doc or (bool(_do_eval(cell)) and (bool(cell.directives_.keys() & _DEFS) or _only_imports(cell)))
            if run:
                self.k.exc = None
                self.k.cell(cell)
            if not (execute or is_doc): cell.outputs = []   # without execution only show_doc's output is wanted
            if self.k.exc is not None and (execute or is_doc):
                exec_cells.errors.append(f"cell {cell.idx_}: {type(self.k.exc).__name__}: {self.k.exc}")

    class FilterDocs(FilterDefaults):
        def base_procs(self): return [exec_cells if p is exec_show_docs else p for p in super().base_procs()]
    return FilterDocs(), exec_cells

_DEFS = {'export', 'exports', 'exporti', 'exec_doc'}

def _only_imports(cell) -> bool:
    "A cell of nothing but imports (a cell that also computes is not run when the notebook is not executed)"
    import ast
    try: body = ast.parse(re.sub(r'^\s*[%!].*$', '', cell.source, flags=re.M)).body
    except SyntaxError: return False
    return bool(body) and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body)

def process_notebook(src:str, proc:str, execute:bool) -> dict:
    "Run nbdev's processing on `src` (executed in its folder when `execute`), write it to `proc`; return a report"
    from fastcore.nbio import read_nb, write_nb
    src, proc, t0 = Path(src), Path(proc), time.time()
    cwd = os.getcwd()
    os.environ['IN_TEST'] = '1'
    import warnings
    if not execute: warnings.filterwarnings('ignore', 'Found cells containing imports')  # those cells are not run
    try:
        os.chdir(src.parent)
        nb = read_nb(src)
        filt, exec_cells = _processors(execute)
        exec_cells.errors = []
        filt(nb)
    finally: os.chdir(cwd)
    proc.parent.mkdir(parents=True, exist_ok=True)
    write_nb(nb, proc)
    return dict(src=str(src), proc=str(proc), execute=execute, errors=list(exec_cells.errors), seconds=time.time() - t0)

# --- 2. processed notebook -> Markdown page ---------------------------------------------------------------

_ANSI = re.compile(r'\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])')
_HEADING = re.compile(r'^(#{1,6})\s+(.+?)\s*$')

def _text(v) -> str: return ''.join(v) if isinstance(v, list) else (v or '')

def _fence(text:str, lang:str='') -> str:
    ticks = '`' * max(3, max((len(m) for m in re.findall(r'`+', text)), default=0) + 1)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"

def _directives(src:str) -> tuple:
    "(directives, source without them) of a processed code cell"
    d, lines = {}, src.splitlines()
    while lines and lines[0].lstrip().startswith('#|'):
        k, _, v = lines.pop(0).lstrip()[2:].partition(':')
        d[k.strip()] = v.strip().strip('"')
    return d, '\n'.join(lines).strip('\n')

class Page:
    "Markdown for one processed notebook; images go to `<page>_files/`"
    def __init__(self, name:str, md_dir:Path, links):
        self.name, self.md_dir, self.links = name, md_dir, links
        self.files = md_dir/f'{name}_files'
        self.anchors, self.errors, self.n_out, self.n_img = set(), [], 0, 0

    def heading(self, m) -> str:
        "A heading whose anchor (`slug`, mkdocs' toc slugify here) is the one nbdev's links expect"
        hashes, text = m.group(1), m.group(2)
        anchor, n = slug(text), 1
        while anchor in self.anchors: anchor, n = f"{slug(text)}_{n}", n + 1   # toc's rule for repeats
        self.anchors.add(anchor)
        # `__repr__` would become bold "repr": escape `_` outside code spans
        parts = re.split(r'(`[^`]*`)', text)
        return f"{hashes} " + ''.join(p if p.startswith('`') else re.sub(r'(?<!\\)_', r'\\_', p) for p in parts)

    def markdown(self, src:str) -> str:
        "Headings given nbdev's anchors, links to the published docs made local (code fences left alone)"
        out, fence = [], None
        for line in self.links(src, self.name).splitlines():
            m = re.match(r'^\s*(`{3,}|~{3,})', line)
            if m and (fence is None or m.group(1).startswith(fence)): fence = None if fence else m.group(1)
            elif fence is None and (h := _HEADING.match(line)): line = self.heading(h)
            out.append(line)
        return '\n'.join(out)

    def image(self, data:str, ext:str) -> str:
        self.files.mkdir(parents=True, exist_ok=True)
        self.n_img += 1
        f = self.files/f'output_{self.n_img}.{ext}'
        f.write_bytes(base64.b64decode(data))
        return f'<img alt="output" src="{Path(self.name).name}_files/{f.name}">'

    def output(self, o:dict, widgets:dict) -> str:
        kind, data = o.get('output_type'), o.get('data', {})
        if kind == 'stream':
            text = _ANSI.sub('', _text(o.get('text'))).strip('\n')
            return f'<div class="nb-output nb-stream" markdown>\n\n{_fence(text, "text")}\n\n</div>' if text.strip() else ''
        if kind == 'error':
            tb = _ANSI.sub('', '\n'.join(o.get('traceback', [])) or f"{o.get('ename')}: {o.get('evalue')}")
            self.errors.append(f"{o.get('ename')}: {o.get('evalue')}")
            return f'<div class="nb-output nb-error"><pre>{html.escape(tb)}</pre></div>'
        view = data.get('application/vnd.jupyter.widget-view+json')
        if view and (static := widget_html(view.get('model_id'), widgets)):
            return f'<div class="nb-output nb-widget">{static}</div>'
        if md := data.get('text/markdown'): return self.markdown(_text(md))
        if h := data.get('text/html'): return f'<div class="nb-output nb-html">\n{_text(h).strip()}\n</div>'
        for mime, ext in (('image/png', 'png'), ('image/jpeg', 'jpg')):
            if mime in data: return f'<div class="nb-output nb-image">{self.image(_text(data[mime]), ext)}</div>'
        if svg := data.get('image/svg+xml'): return f'<div class="nb-output nb-image">{_text(svg)}</div>'
        if txt := data.get('text/plain'):
            return f'<div class="nb-output nb-text" markdown>\n\n{_fence(_text(txt), "text")}\n\n</div>'
        return ''

    def render(self, nb:dict) -> str:
        widgets = (nb.get('metadata', {}).get('widgets', {})
                   .get('application/vnd.jupyter.widget-state+json', {}).get('state', {}))
        parts = []
        for c in nb['cells']:
            src = _text(c.get('source'))
            if c['cell_type'] == 'raw' and src.startswith('---'): parts.append(self.frontmatter(src))
            elif c['cell_type'] == 'markdown' and src.strip(): parts.append(self.markdown(src))
            elif c['cell_type'] == 'code':
                d, code = _directives(src)
                if d.get('include') == 'false': continue
                if code and d.get('echo') != 'false': parts.append(_fence(code, 'python'))
                if d.get('output') != 'false':
                    for o in c.get('outputs', []):
                        if s := self.output(o, widgets):
                            self.n_out += s.startswith('<div class="nb-output')
                            parts.append(s)
        return '\n\n'.join(parts) + '\n'

    def frontmatter(self, src:str) -> str:
        import yaml
        fm = yaml.safe_load(src.strip().strip('-')) or {}
        out = [self.heading(re.match(r'(#)\s+(.*)', f"# {fm['title']}"))] if fm.get('title') else []
        if fm.get('description'): out.append(f'<p class="nb-subtitle">{html.escape(str(fm["description"]))}</p>')
        return '\n\n'.join(out)

# The dashboards' static view: rebuild the widget tree from the state nbdev saves in the notebook's metadata.
_BOXES = {'VBoxModel': 'column', 'HBoxModel': 'row', 'BoxModel': 'row', 'GridBoxModel': 'row', 'TabModel': 'column',
          'AccordionModel': 'column'}

_CSS = ('width', 'height', 'min_width', 'max_width', 'max_height', 'overflow', 'align_items', 'justify_content',
        'grid_template_columns', 'grid_gap', 'border', 'padding', 'margin', 'flex_flow', 'display')

def _style(w:dict, state:dict) -> str:
    "Inline CSS from a widget's layout (sizes, grid) and style (button colour) models"
    css = {}
    for ref, keys in (('layout', _CSS), ('style', ('button_color', 'font_weight'))):
        sub = state.get(str(w.get('state', {}).get(ref, '')).replace('IPY_MODEL_', ''), {}).get('state', {})
        for k in keys:
            if sub.get(k): css[{'grid_gap': 'gap', 'button_color': 'background'}.get(k, k).replace('_', '-')] = sub[k]
    if w.get('model_name') == 'GridBoxModel': css['display'] = 'grid'
    return html.escape('; '.join(f'{k}: {v}' for k, v in css.items()))

def widget_html(model_id, state:dict, depth:int=0) -> str:
    "A static HTML view of the widget `model_id` (text, HTML, images, buttons and boxes; controls shown disabled)"
    w = state.get(model_id) if model_id else None
    if not w or depth > 30: return ''
    name, s = w.get('model_name', ''), w.get('state', {})
    desc = html.escape(s.get('description', '') or '')
    cls = ' '.join(html.escape(c) for c in s.get('_dom_classes', [])) + f'" style="{_style(w, state)}' 
    kids = ''.join(widget_html(k.replace('IPY_MODEL_', ''), state, depth + 1) for k in s.get('children', []))
    if name in _BOXES: return f'<div class="w-box w-{_BOXES[name]} {cls}">{kids}</div>'
    if name in ('HTMLModel', 'HTMLMathModel'): return f'<div class="w-html {cls}">{s.get("value", "")}</div>'
    if name == 'LabelModel': return f'<span class="w-label {cls}">{html.escape(s.get("value", ""))}</span>'
    if name == 'ImageModel':
        buf = next((b for b in w.get('buffers', []) if b.get('path') == ['value']), None)
        if not buf: return ''
        fmt = s.get('format', 'png')
        return f'<img class="w-image {cls}" alt="{desc}" src="data:image/{fmt};base64,{buf["data"]}">'
    if name in ('ButtonModel', 'FileUploadModel', 'ToggleButtonModel'):
        return f'<button class="w-button {cls}" disabled>{desc or html.escape(s.get("label", "") or "")}</button>'
    if name in ('DropdownModel', 'SelectModel', 'RadioButtonsModel', 'ToggleButtonsModel'):
        opts = s.get('_options_labels', [])
        i = s.get('index') if isinstance(s.get('index'), int) else 0
        label = html.escape(opts[i]) if opts and 0 <= i < len(opts) else ''
        return f'<span class="w-control {cls}">{desc} <select disabled><option>{label}</option></select></span>'
    if name.endswith(('SliderModel', 'ProgressModel', 'TextModel', 'IntTextModel', 'FloatTextModel', 'CheckboxModel')):
        return f'<span class="w-control {cls}">{desc} <code>{html.escape(str(s.get("value", "")))}</code></span>'
    if name == 'OutputModel':
        outs = []
        for o in s.get('outputs', []):
            d = o.get('data', {})
            if 'text/html' in d: outs.append(_text(d['text/html']))
            elif 'image/png' in d: outs.append(f'<img src="data:image/png;base64,{_text(d["image/png"])}">')
            elif o.get('output_type') == 'stream' or 'text/plain' in d:
                outs.append(f'<pre>{html.escape(_text(o.get("text") or d.get("text/plain")))}</pre>')
        return f'<div class="w-output {cls}">{"".join(outs)}</div>'
    return kids and f'<div class="w-box {cls}">{kids}</div>'

def local_links(pages:dict, doc_url:str, anchors:dict):
    """A function that turns links to the published docs (`{doc_url}/core.html#x`) and to notebooks into local ones;
    an anchor that the page lacks (nbdev links private helpers, which get no `show_doc`) becomes a link to the page"""
    by_html = {f'{p}.html': p for p in pages.values()}
    by_nb = {k.replace(os.sep, '/'): v for k, v in pages.items()}
    def rel(target:str, frm:str) -> str: return os.path.relpath(target, os.path.dirname(frm) or '.').replace(os.sep, '/')
    def fix(src:str, frm:str) -> str:
        def sub(m):
            url = m.group(2)
            path, _, frag = url.partition('#')
            if doc_url and path.startswith(doc_url): path = path[len(doc_url):].lstrip('/')
            elif re.match(r'^[a-z]+:', path) or not path: return m.group(0)
            else:
                here = os.path.normpath(os.path.join(os.path.dirname(frm + '.ipynb'), path)).replace(os.sep, '/')
                if here in by_nb: path = f'{by_nb[here]}.html'
                elif path.endswith('.ipynb'): return m.group(0)
                else: return m.group(0)
            page = by_html.get(path or 'index.html')
            if page is None: return m.group(0)
            frag = frag if frag in anchors.get(page, ()) else ''
            return f"{m.group(1)}{rel(page + '.md', frm)}{'#' + frag if frag else ''})"
        return re.sub(r'(\]\()([^)\s]+)\)', sub, src)
    return fix

def render_page(proc:Path, name:str, md_dir:Path, links) -> dict:
    page = Page(name, md_dir, links)
    text = page.render(json.loads(proc.read_text()))
    out = md_dir/f'{name}.md'
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return dict(anchors=page.anchors, errors=page.errors, outputs=page.n_out)

def api_index(modidx:dict, anchors:dict, pages:dict) -> str:
    "Every exported name in `_modidx`, by module, linked to its `show_doc` (or to its chapter when it has none)"
    mod_page = {f"{p}.html": p for p in pages.values()}
    lines = ['# API index {#api-index}', '',
             'Every name the package exports (`imgcls_nb/_modidx.py`), by module, linked to where its chapter '
             'documents it. Names without their own `show_doc` (private helpers, methods) link to their chapter.']
    for mod, syms in sorted(modidx['syms'].items()):
        lines += ['', f'## `{mod}` {{#{slug(mod)}}}', '', '| name | chapter | source |', '|---|---|---|']
        for sym, (doc, src) in sorted(syms.items()):
            html_path, _, frag = doc.partition('#')
            page = mod_page.get(html_path)
            short = sym[len(mod) + 1:]
            if page is None:
                lines.append(f'| `{short}` | (no chapter page for {html_path}) | `{src}` |')
                continue
            link = f'{page}.md#{frag}' if frag in anchors.get(page, ()) else f'{page}.md'
            lines.append(f'| [`{short}`]({link}) | [{page}]({page}.md) | `{src}` |')
    return '\n'.join(lines) + '\n'

# --- 3. the site -------------------------------------------------------------------------------------------

def nav(pages:dict, titles:dict) -> list:
    "mkdocs `nav`: home, chapters, each subfolder's notebooks (tutorials), the API index"
    items, groups = [], {}
    for rel, page in pages.items():
        entry = {titles.get(page, page): f'{page}.md'}
        folder = Path(rel).parent
        if str(folder) == '.': items.append(entry)
        else: groups.setdefault(str(folder).replace('_', ' ').title(), []).append(entry)
    home = [i for i in items if 'index.md' in i.values()]
    chapters = [i for i in items if 'index.md' not in i.values()]
    return home + [{'Chapters': chapters}] + [{k: v} for k, v in groups.items()] + [{'API index': 'api.md'}]

def build_site(md_dir:Path, out:Path, nav_:list):
    "mkdocs build with the repository's mkdocs.yml into a temporary folder, then renamed to `out`"
    import yaml
    cfg = md_dir.parent/'mkdocs.yml'
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.', dir=out.parent))
    cfg.write_text(yaml.safe_dump({'INHERIT': str(MKDOCS_YML), 'docs_dir': str(md_dir), 'site_dir': str(tmp/'site'),
                                   'nav': nav_}, sort_keys=False))
    env = {**os.environ, 'NO_MKDOCS_2_WARNING': '1', 'PYTHONPATH': os.pathsep.join([str(ROOT/'tools'), os.environ.get('PYTHONPATH', '')])}
    r = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--quiet', '-f', str(cfg)], capture_output=True,
                       text=True, env=env, cwd=ROOT)
    if r.returncode:
        shutil.rmtree(tmp, ignore_errors=True)
        sys.exit(f"mkdocs build failed ({cfg}):\n{r.stdout}{r.stderr}")
    if r.stderr.strip(): print(r.stderr.strip())
    old = out.with_name(f'.{out.name}.old')
    if out.exists(): out.rename(old)
    (tmp/'site').rename(out)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)

# --- checks on the built site ------------------------------------------------------------------------------

class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links, self.classes, self.texts, self._a = set(), [], [], [], None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'a': self._a = [a.get('href', ''), '']
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('name'): self.ids.add(a['name'])
        self.classes += (a.get('class') or '').split()
        for k in ('href', 'src'):
            if a.get(k) and not (tag == 'a' and k == 'src'): self.links.append((tag, a[k]))
    def handle_data(self, data):
        if self._a is not None: self._a[1] += data
    def handle_endtag(self, tag):
        if tag == 'a' and self._a is not None: self.texts.append((self._a[0], self._a[1].strip())); self._a = None

def parse_site(site:Path) -> dict:
    "html file (relative path) -> parsed ids, links and classes"
    out = {}
    for f in site.rglob('*.html'):
        p = _Links()
        p.feed(f.read_text(errors='replace'))
        out[f.relative_to(site).as_posix()] = p
    return out

def check_site(site:Path, pages:list, modidx:dict, outputs:dict=None, executed:list=()) -> list:
    """Problems of a built site: a page missing for a notebook, a broken internal link or anchor, a page showing fewer
    outputs than its processed notebook has (`outputs`: page -> count) or an error output (on `executed` pages),
    an exported name missing from the API index"""
    probs, parsed = [], parse_site(site)
    for p in pages:
        if f'{p}.html' not in parsed: probs.append(f"no page {p}.html for notebook {p}")
    for f, p in sorted(parsed.items()):
        if f == '404.html': continue   # absolute links, for a web server's root only
        for tag, url in p.links:
            u = urlsplit(url)
            if u.scheme or u.netloc or url.startswith(('mailto:', 'data:', 'javascript:')): continue
            target = f if not u.path else os.path.normpath(os.path.join(os.path.dirname(f), unquote(u.path))).replace(os.sep, '/')
            if not (site/target).exists(): probs.append(f"{f}: broken link {url}"); continue
            if u.fragment and target.endswith('.html') and unquote(u.fragment) not in parsed[target].ids:
                probs.append(f"{f}: broken anchor {url}")
    for p, n in (outputs or {}).items():
        cl = parsed.get(f'{p}.html')
        if cl is not None and cl.classes.count('nb-output') != n:
            probs.append(f"{p}.html: shows {cl.classes.count('nb-output')} cell outputs of the {n} in its notebook")
    for p in executed:
        cl = parsed.get(f'{p}.html')
        if cl is not None and 'nb-error' in cl.classes: probs.append(f"{p}.html: an executed cell shows an error output")
    if executed and not any(n for p, n in (outputs or {}).items() if p in executed):
        probs.append(f"no output on any of the {len(executed)} executed pages")
    api = parsed.get('api.html')
    if api is None: return probs + ["no API index (api.html)"]
    listed = {(text, os.path.basename(urlsplit(url).path)) for url, text in api.texts}
    for mod, syms in modidx['syms'].items():
        for sym, (doc, _) in syms.items():
            if (sym[len(mod) + 1:], doc.partition('#')[0]) not in listed:
                probs.append(f"api.html: {sym} is not listed with a link to {doc.partition('#')[0]}")
    return probs

# --- main ----------------------------------------------------------------------------------------------------

def _modidx() -> dict:
    ns = {}
    exec((ROOT/'imgcls_nb'/'_modidx.py').read_text(), ns)
    return ns['d']

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=str(ROOT/'_docs'), help='site folder (replaced atomically)')
    ap.add_argument('--proc', default=str(ROOT/'_proc'), help='processed notebooks and Markdown pages')
    ap.add_argument('--execute', default='all', help="'all', 'none', or comma-separated notebook stems to execute")
    ap.add_argument('--workers', type=int, default=int(os.environ.get('DOCS_WORKERS', os.cpu_count() or 1)))
    ap.add_argument('--pages-only', action='store_true',
                    help='reuse the processed notebooks in --proc (no execution): only pages and site are rebuilt')
    ap.add_argument('--check', action='store_true', help='fail on a missing page, broken link/anchor or error output')
    a = ap.parse_args(argv)
    t0 = time.time()
    out, proc = Path(a.out).resolve(), Path(a.proc).resolve()
    nbs = notebooks()
    want = {s.strip() for s in a.execute.split(',')} if a.execute not in ('all', 'none') else set()
    run = lambda nb: a.execute == 'all' or nb.stem in want or page_name(nb) in want
    unknown = want - {nb.stem for nb in nbs} - {page_name(nb) for nb in nbs}
    if unknown: sys.exit(f"--execute: no notebook named {', '.join(sorted(unknown))} in {NBS}")
    if a.pages_only: return pages_and_site(a, nbs, run, proc, out, [], t0)
    if proc.exists(): shutil.rmtree(proc)
    proc.mkdir(parents=True)

    # 1. nbdev processing: executed notebooks one per fresh process (the longest first); the others in one process
    jobs = [(str(nb), str(proc/nb.relative_to(NBS)), run(nb)) for nb in nbs]
    reports, cheap = [], [j for j in jobs if not j[2]]
    print(f"docs: processing {len(jobs)} notebooks ({sum(j[2] for j in jobs)} executed) with {a.workers} workers",
          flush=True)
    os.environ.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // max(1, a.workers))))
    with ProcessPoolExecutor(a.workers, mp_context=get_context('spawn'), max_tasks_per_child=1) as ex:
        futs = [ex.submit(process_notebook, *j) for j in jobs if j[2]]
        futs += [ex.submit(_process_many, cheap[i::a.workers]) for i in range(a.workers) if cheap[i::a.workers]]
        for f in as_completed(futs):
            for r in (res if isinstance(res := f.result(), list) else [res]):
                reports.append(r)
                print(f"  {Path(r['src']).relative_to(NBS)}: {r['seconds']:.1f} s"
                      f"{' executed' if r['execute'] else ''}{'; ERRORS ' + '; '.join(r['errors']) if r['errors'] else ''}",
                      flush=True)

    pages_and_site(a, nbs, run, proc, out, reports, t0)

def pages_and_site(a, nbs:list, run, proc:Path, out:Path, reports:list, t0:float):
    "Stages 2 and 3, and the checks"
    missing = [str(nb.relative_to(NBS)) for nb in nbs if not (proc/nb.relative_to(NBS)).exists()]
    if missing: sys.exit(f"{proc} has no processed {', '.join(missing)}: build without --pages-only")
    if a.pages_only: reports = json.loads((proc/'report.json').read_text())['reports']
    run = (lambda nb: str(nb) in {r['src'] for r in reports if r['execute']}) if a.pages_only else run
    t1 = time.time()
    # 2. Markdown pages and the API index
    from nbdev.config import get_config
    cfg = get_config()
    pages = {str(nb.relative_to(NBS)): page_name(nb) for nb in nbs}
    anchors, titles, executed, errors, outputs = {}, {}, [], [], {}
    links = local_links(pages, f"{cfg.doc_host}{cfg.doc_baseurl}".rstrip('/'), anchors)
    md_dir = proc/'_md'
    if md_dir.exists(): shutil.rmtree(md_dir)
    for nb in nbs:   # first pass: the anchors of every page, for the links of the second
        rel = str(nb.relative_to(NBS))
        anchors[pages[rel]] = render_page(proc/rel, pages[rel], md_dir, links)['anchors']
    for nb in nbs:
        rel = str(nb.relative_to(NBS))
        r = render_page(proc/rel, pages[rel], md_dir, links)
        anchors[pages[rel]], outputs[pages[rel]] = r['anchors'], r['outputs']
        nbj = json.loads((proc/rel).read_text())
        fm = next((_text(c['source']) for c in nbj['cells'] if c['cell_type'] == 'raw'), '')
        t = re.search(r'^title:\s*(.+)$', fm, re.M)
        titles[pages[rel]] = 'Home' if pages[rel] == 'index' else (t.group(1).strip().strip('"\'') if t else pages[rel])
        if run(nb): executed.append(pages[rel])
        errors += [f"{rel}: {e}" for e in r['errors']]
    for r in reports: errors += [f"{Path(r['src']).relative_to(NBS)}: {e}" for e in r['errors']]
    shutil.copy2(NBS/'styles.css', md_dir/'styles.css')
    shutil.copytree(ASSETS, md_dir/'assets'/'imgcls', ignore=shutil.ignore_patterns('*.LICENSE'))
    modidx = _modidx()
    (md_dir/'api.md').write_text(api_index(modidx, anchors, pages))

    # 3. the site
    t2 = time.time()
    build_site(md_dir, out, nav(pages, titles))
    print(f"docs: {len(pages)} notebook pages + API index in {out} ({time.time() - t0:.0f} s: notebooks {t1 - t0:.0f} s, "
          f"pages {t2 - t1:.0f} s, mkdocs {time.time() - t2:.0f} s); "
          f"open {out/'index.html'}", flush=True)
    (proc/'report.json').write_text(json.dumps(dict(executed=executed, errors=sorted(set(errors)), outputs=outputs,
                                                    seconds=time.time() - t0, reports=reports), indent=1))
    if a.check:
        probs = sorted(set(errors)) + check_site(out, list(pages.values()), modidx, outputs, executed)
        for p in probs: print('  ' + p)
        if probs: sys.exit(f"docs --check: {len(probs)} problems")
        print(f"docs --check: a page for each of {len(pages)} notebooks, every internal link and anchor resolves, "
              f"{len(executed)} executed pages show outputs and no errors, the API index lists every exported name")

def _process_many(jobs:list) -> list:
    "Process notebooks that are not executed, one after another in one process (imports are paid once)"
    return [process_notebook(*j) for j in jobs]

if __name__ == '__main__': main()
