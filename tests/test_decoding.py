"Bad-input matrix for decoding: every colour mode converts the same way; every broken file is a clear, named error."
import hashlib, io, os
from pathlib import Path
import numpy as np, pytest
from PIL import Image
from imgcls_nb.core import ImageDecodeError
from imgcls_nb.data import load_image, from_folder, dataset_report, to_rgb

def _save(img, path, fmt=None, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kw)
    return path

@pytest.fixture
def real(fm):
    "A real 28x28 Fashion-MNIST image, upscaled to 64x64 greyscale"
    return Image.open(next((fm/'valid'/'sneaker').iterdir())).resize((64, 64))

MODES = {
    'L.png': lambda g: g,
    'RGB.jpg': lambda g: g.convert('RGB'),
    'P.png': lambda g: g.convert('RGB').convert('P', palette=Image.ADAPTIVE),
    'RGBA.png': lambda g: g.convert('RGBA'),
    'LA.png': lambda g: g.convert('LA'),
    'CMYK.jpg': lambda g: g.convert('CMYK'),
    'I16.png': lambda g: Image.fromarray((np.asarray(g, np.uint16)*257)),
    '1.bmp': lambda g: g.convert('1'),
    'RGB.webp': lambda g: g.convert('RGB'),
    'RGB.tif': lambda g: g.convert('RGB'),
    'RGB.gif': lambda g: g.convert('RGB'),
}

@pytest.mark.parametrize('name', list(MODES))
def test_every_mode_decodes_to_rgb(tmp_path, real, name):
    p = _save(MODES[name](real), tmp_path/name)
    img = load_image(p)
    assert img.mode == 'RGB' and img.size == (64, 64)
    a = np.asarray(img).astype(int)
    assert (a[..., 0] == a[..., 1]).mean() > 0.95  # grey stays grey whatever the container
    if name in ('L.png', 'I16.png', 'LA.png', 'RGBA.png', 'P.png'):  # lossless: the exact grey values come back
        assert np.abs(a[..., 0] - np.asarray(real, int)).max() <= 1

def test_16bit_scaling_keeps_full_range(tmp_path):
    ramp = Image.fromarray(np.linspace(0, 65535, 256, dtype=np.uint16).reshape(16, 16))
    a = np.asarray(load_image(_save(ramp, tmp_path/'ramp16.png')))[..., 0]
    assert a.min() == 0 and a.max() == 255

def test_transparency_is_composited_on_white(tmp_path):
    img = Image.new('RGBA', (8, 8), (255, 0, 0, 0)); img.putpixel((0, 0), (255, 0, 0, 255))
    out = load_image(_save(img, tmp_path/'t.png'))
    assert out.getpixel((1, 1)) == (255, 255, 255) and out.getpixel((0, 0)) == (255, 0, 0)
    pal = img.convert('P'); pal.info['transparency'] = pal.getpixel((1, 1))
    assert load_image(_save(pal, tmp_path/'tp.png', transparency=pal.getpixel((1, 1)))).getpixel((1, 1)) == (255, 255, 255)

@pytest.mark.parametrize('orientation,size', [(1, (30, 20)), (3, (30, 20)), (6, (20, 30)), (8, (20, 30))])
def test_exif_orientation(tmp_path, orientation, size):
    exif = Image.Exif(); exif[0x0112] = orientation
    p = _save(Image.new('RGB', (30, 20), 'blue'), tmp_path/f'o{orientation}.jpg', exif=exif)
    assert load_image(p).size == size

def _jpeg(real):
    b = io.BytesIO(); real.convert('RGB').save(b, 'JPEG', quality=90); return b.getvalue()

def _png(real):
    b = io.BytesIO(); real.save(b, 'PNG'); return b.getvalue()

BROKEN = {
    'empty.jpg': (lambda r: b'', 'empty file'),
    'truncated.jpg': (lambda r: _jpeg(r)[:len(_jpeg(r))//2], 'truncated'),
    'truncated.png': (lambda r: _png(r)[:len(_png(r)) - 40], ''),
    'random.jpg': (lambda r: os.urandom(2048), 'not an image'),
    'text.png': (lambda r: b'hello, I am a text file', 'not an image'),
    'html.jpg': (lambda r: b'<html><body>404 Not Found</body></html>', 'not an image'),
}

@pytest.mark.parametrize('name', list(BROKEN))
def test_broken_files_name_file_and_reason(tmp_path, real, name):
    make, reason = BROKEN[name]
    p = tmp_path/name; p.write_bytes(make(real))
    with pytest.raises(ImageDecodeError) as e: load_image(p)
    assert str(p) in str(e.value) and reason in e.value.reason

def test_decompression_bomb_refused_before_decoding(tmp_path, monkeypatch):
    import imgcls_nb.data as data
    monkeypatch.setattr(data, 'MAX_IMAGE_PIXELS', 1000)
    p = _save(Image.new('RGB', (100, 100)), tmp_path/'bomb.png')
    with pytest.raises(ImageDecodeError, match='decompression-bomb'): load_image(p)

def _tree_hash(root):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(root).rglob('*')) if p.is_file()}

def test_folder_with_bad_files_finishes_reports_and_modifies_nothing(tmp_path, real):
    root = tmp_path/'data'
    for c in ('a', 'b'):
        for i in range(6): _save(real.rotate(i*10 if c == 'a' else -i*10), root/c/f'{i}.png')
    for name,(make,_) in BROKEN.items(): (root/'a'/name).write_bytes(make(real))
    (root/'b'/'notes.txt').write_text('labels were checked by hand')
    (root/'a'/'.DS_Store').write_bytes(b'\0\0')
    before = _tree_hash(root)
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob('*')}
    src = from_folder(root, valid_pct=0.25, seed=0)
    rep = dataset_report(src)
    assert len(src.items) == 12
    assert sorted(Path(p).name for p in rep.bad_files.path) == sorted([*BROKEN, 'notes.txt'])
    assert all(rep.bad_files.reason.str.len() > 5)
    assert _tree_hash(root) == before and {p: p.stat().st_mtime_ns for p in root.rglob('*')} == mtimes

def test_train_valid_duplicates_are_reported(tmp_path, real):
    for split in ('train', 'valid'):
        for c in ('a', 'b'): _save(real.rotate(5 if c == 'a' else 50), tmp_path/split/c/'x.png')
    _save(real.rotate(90), tmp_path/'train'/'a'/'y.png')
    rep = dataset_report(from_folder(tmp_path))
    assert len(rep.train_valid_duplicates) == 2 and len(rep.duplicates) == 2

def test_prediction_converts_like_training(tiny_bundle, tmp_path, real):
    "A CMYK or palette file predicts exactly like its RGB conversion: one decoding rule everywhere"
    from imgcls_nb.bundle import load_bundle
    clf = load_bundle(tiny_bundle)
    files = [_save(MODES[m](real), tmp_path/m) for m in ('P.png', 'RGBA.png', 'I16.png', 'L.png')]
    preds = clf.predict(files, top_k=10)
    ref = clf.predict([to_rgb(Image.open(f)) for f in files], top_k=10)
    for p,r in zip(preds, ref): np.testing.assert_allclose(dict(p.top_k)[p.label], dict(r.top_k)[r.label], atol=1e-6)

# --- the fast decoders (simplejpeg, pyspng): same pixels as Pillow, used only where they apply ------------------

def _photos():
    "Real photographs: scikit-image's and scikit-learn's, colour and grey"
    from skimage import data
    from sklearn.datasets import load_sample_images
    return [data.chelsea(), data.coffee(), data.astronaut(), data.camera(), data.moon(), *load_sample_images().images]

FAST_VARIANTS = {   # how the photos are written: every variant must decode bit-identically through both paths
    'q90.jpg': dict(quality=90), 'q75-420.jpg': dict(quality=75, subsampling=2), 'q95-444.jpg': dict(quality=95, subsampling=0),
    'progressive.jpg': dict(quality=85, progressive=True), 'optimized.png': dict(optimize=True), 'plain.png': dict(),
}

def test_fast_decoders_are_installed_in_the_dev_env():
    "`[dev]` pulls in `[fast]`: without this, the tests below would not exercise the fast path"
    from imgcls_nb.data import fast_decoders
    assert set(fast_decoders()) == {'JPEG', 'PNG'}

@pytest.mark.parametrize('variant', list(FAST_VARIANTS))
def test_fast_decoding_gives_pillows_pixels(tmp_path, monkeypatch, variant):
    import imgcls_nb.data as data
    files = [_save(Image.fromarray(a), tmp_path/f'{i}-{variant}', **FAST_VARIANTS[variant]) for i, a in enumerate(_photos())]
    fast = [np.asarray(load_image(f)) for f in files]
    monkeypatch.setattr(data, 'FAST_DECODE', False)
    for f, a in zip(files, fast): assert np.array_equal(a, np.asarray(load_image(f))), f

def _calls(monkeypatch) -> list:
    "Record which formats the fast decoders are asked to decode"
    import imgcls_nb.data as data
    decs, seen = dict(data.fast_decoders()), []
    monkeypatch.setattr(data, 'fast_decoders', lambda: {k: (lambda b, m, k=k, f=f: (seen.append(k), f(b, m))[1]) for k, f in decs.items()})
    return seen

def test_fast_path_is_taken_for_plain_files_only(tmp_path, monkeypatch, real):
    seen = _calls(monkeypatch)
    plain = [_save(real.convert('RGB'), tmp_path/'rgb.jpg'), _save(real, tmp_path/'grey.jpg'), _save(real.convert('RGB'), tmp_path/'rgb.png'),
             _save(real, tmp_path/'grey.png')]
    for f in plain: load_image(f); load_image(f.read_bytes())
    assert seen == ['JPEG', 'JPEG', 'JPEG', 'JPEG', 'PNG', 'PNG', 'PNG', 'PNG']
    exif = Image.Exif(); exif[0x0112] = 6
    wide = real.convert('RGB').crop((0, 0, 64, 32))
    other = [_save(wide, tmp_path/'rotated.jpg', exif=exif), _save(wide, tmp_path/'rotated.png', exif=exif), _save(MODES['P.png'](real), tmp_path/'p.png'),
             _save(MODES['I16.png'](real), tmp_path/'i16.png'), _save(real.convert('RGBA'), tmp_path/'rgba.png'),
             _save(MODES['CMYK.jpg'](real), tmp_path/'cmyk.jpg')]
    seen.clear()
    for f in other: load_image(f)
    assert seen == [] and load_image(other[0]).size == load_image(other[1]).size == (32, 64)   # turned upright by Pillow
    seen.clear(); load_image(plain[0], draft=16)   # draft decoding is Pillow's
    assert seen == []

def test_a_file_the_fast_decoder_refuses_gets_pillows_error(tmp_path, monkeypatch, real):
    "A truncated plain JPEG reaches the fast decoder, which refuses it; Pillow then names the problem"
    seen = _calls(monkeypatch)
    p = tmp_path/'cut.jpg'; p.write_bytes(_jpeg(real)[:len(_jpeg(real))//2])
    with pytest.raises(ImageDecodeError, match='truncated'): load_image(p)
    assert seen == ['JPEG']
