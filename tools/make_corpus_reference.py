"""PIL's decoded RGB bytes for every file of the public image corpus (../shared/image-corpus, see its README).

For each file the corpus manifest lists, this records what Debian's Pillow 9.4 does with
`Image.open(path).convert('RGB')` (torchvision's default_loader): the size and the SHA-256 of the RGB bytes,
or the one-line reason it refuses. The corpus test (test/image-corpus.test.ts) decodes every file on every
host and compares hashes; hashes keep the reference small (the corpus decodes to ~100 MB of pixels).

    /usr/bin/python3 tools/make_corpus_reference.py CORPUS_DIR OUT.json
"""
import hashlib
import resource
import json
import sys
import warnings

from PIL import Image

# vimedge's default maxPixels: larger files are refused by every host before decoding, so not decoded here.
MAX_PIXELS = 100_000_000
Image.MAX_IMAGE_PIXELS = None  # PIL's own bomb warning is not a refusal
warnings.simplefilter('ignore')


def reference(path):
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                return {'width': im.width, 'height': im.height, 'format': im.format, 'mode': im.mode, 'overLimit': True}
            rgb = im.convert('RGB')
            return {'width': rgb.width, 'height': rgb.height, 'format': im.format, 'mode': im.mode,
                    'sha256': hashlib.sha256(rgb.tobytes()).hexdigest()}
    except Exception as err:  # noqa: BLE001 - every refusal is recorded, whatever PIL raises
        return {'refused': f'{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""}'}


def main():
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a damaged file's MemoryError is a refusal
    corpus, out = sys.argv[1], sys.argv[2]
    with open(f'{corpus}/manifest.json') as f:
        manifest = json.load(f)
    result = {'pillow': Image.__version__, 'files': {e['file']: reference(f"{corpus}/{e['file']}") for e in manifest}}
    with open(out, 'w') as f:
        json.dump(result, f, indent=0, sort_keys=True)


if __name__ == '__main__':
    main()
