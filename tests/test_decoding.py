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
