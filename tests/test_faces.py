"""Faces from the Hugging Face Hub (gan_lib/faces.py), against local parquet files shaped like the Hub's."""

import io
import os

import numpy as np
import pytest
from PIL import Image

import gan_lib
from gan_lib import faces
from gan_lib.datasets import DownloadError

pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow reads the Hub's parquet files")
import pyarrow as pa  # noqa: E402


def jpeg(value, size=(178, 218)):
    buf = io.BytesIO()
    Image.new("RGB", size, (value, 255 - value, 40)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """faces.download serving shards of 3 faces each, as the Hub's are laid out (an image struct and attributes);
    returns the list of shards asked for."""
    asked = []

    def fake_download(fname, url, title, **options):
        shard = int(fname.split("-")[1])
        asked.append(shard)
        path = tmp_path / "hub" / fname
        path.parent.mkdir(exist_ok=True)
        images = [{"bytes": jpeg(10 * shard + i), "path": f"{shard}-{i}.jpg"} for i in range(3)]
        pq.write_table(pa.table({"image": images, "Smiling": [1, -1, 1]}), path)
        return str(path)

    monkeypatch.setattr(faces, "download", fake_download)
    return asked


def test_faces_are_written_as_jpegs_from_as_few_shards_as_needed(tmp_path, hub):
    folder = faces.faces_folder(str(tmp_path / "faces"), n=7, log=None)
    files = sorted(os.listdir(folder))
    assert files == [f"{i:06d}.jpg" for i in range(7)] and hub == [0, 1, 2]  # 3 + 3 + 1 of the third
    with Image.open(os.path.join(folder, "000004.jpg")) as im:
        assert im.format == "JPEG" and im.size == (178, 218)
        assert abs(np.asarray(im)[0, 0, 0] - 11) <= 3  # shard 1's second face, its bytes as stored
    x = gan_lib.load_images(folder, image_size=64)  # the folder trains as any folder of photos does
    assert x.shape == (7, 64, 64, 3)
    assert faces.faces_folder(folder, n=5, log=None) == folder and hub == [0, 1, 2]  # already there: nothing fetched


def test_an_unreachable_hub_says_what_to_do_instead(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr("keras.utils.get_file", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DownloadError, match="are you offline.*GAN_LIB_FACES"):
        faces.faces_folder(str(tmp_path / "faces"), n=2, log=None)


def test_bad_requests_and_bad_files(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="from 1 to 202,599"):
        faces.faces_folder(str(tmp_path / "f"), n=0)
    path = tmp_path / "no_images.parquet"
    pq.write_table(pa.table({"Smiling": [1]}), path)
    monkeypatch.setattr(faces, "download", lambda *a, **k: str(path))
    with pytest.raises(ValueError, match="holds no image column"):
        faces.faces_folder(str(tmp_path / "g"), n=1, log=None)
    pq.write_table(pa.table({"image": [{"bytes": b"not an image", "path": "x"}]}), path)
    with pytest.raises(ValueError, match="not JPEG or PNG"):
        faces.faces_folder(str(tmp_path / "h"), n=1, log=None)
