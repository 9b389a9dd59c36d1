"""Aligned CelebA faces without a manual upload: a folder of JPEGs fetched from the Hugging Face Hub.

CelebA (Liu et al. 2015, http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html) is distributed through Google Drive,
whose download quotas fail for many Colab users. The Hub's copy in the HugGAN community's dataset
huggan/CelebA-faces-with-attributes holds the same aligned and cropped faces (img_align_celeba, 178 x 218) in
132 parquet files of about 1,500 faces each (10.6 MB); faces_folder downloads as many as it needs, anonymously,
into the Keras cache, and writes the faces out as image files, bytes as stored (JPEG, as CelebA's are).
Reading parquet needs pyarrow (Colab has it; elsewhere pip install pyarrow).

Terms: CelebA is available for non-commercial research purposes only, under the CelebA dataset's agreement
(the project page above); by downloading it you accept those terms. gan_lib ships none of it.
"""

import io
import os

from PIL import Image

from .datasets import download

HUB = "https://huggingface.co/datasets/huggan/CelebA-faces-with-attributes/resolve/main/data/"
SHARDS = 132  # train-00000-of-00132.parquet ... train-00131-of-00132.parquet
TERMS = ("CelebA is for non-commercial research purposes only (its dataset agreement: "
         "http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html); downloading it accepts those terms")


def faces_folder(folder, n=10000, log=print):
    """folder with at least n aligned CelebA faces as 000000.jpg, 000001.jpg, ... (kept if it has them already;
    .png should the Hub's copy hold PNGs).

    Returns the folder. DownloadError when the Hub cannot be reached (with what to do instead); ValueError
    when pyarrow is missing or a downloaded file holds no images.
    """
    if int(n) != n or not 1 <= n <= 202599:
        raise ValueError(f"n must be a whole number of faces from 1 to 202,599 (all of CelebA), got {n}")
    os.makedirs(folder, exist_ok=True)
    have = [f for f in os.listdir(folder) if f.endswith((".jpg", ".png")) and not f.startswith(".")]
    if len(have) >= n:
        return folder
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("reading the Hub's parquet files needs pyarrow: pip install pyarrow (Colab has it)") from None
    if log:
        log(f"downloading {n:,} aligned CelebA faces from the Hugging Face Hub into {folder}; {TERMS}")
    written, shard = 0, 0
    while written < n:
        if shard == SHARDS:
            break
        shard_name = f"train-{shard:05d}-of-{SHARDS:05d}.parquet"
        path = download(shard_name, HUB + shard_name, f"CelebA faces ({shard_name})", cache_subdir="celeba_hub",
                        advice="download img_align_celeba.zip from the CelebA page yourself, unzip it, and set "
                        "GAN_LIB_FACES to the folder")
        images, ext = _images(pq.read_table(path), path)
        for image in images:
            if written == n:
                break
            name = f"{written:06d}{ext}"
            tmp = os.path.join(folder, f".{name}.tmp")  # hidden: a folder reader skips it if we are stopped here
            with open(tmp, "wb") as f:
                f.write(image)
            os.replace(tmp, os.path.join(folder, name))
            written += 1
        shard += 1
        if log:
            log(f"  {written:,} faces")
    return folder


def _images(table, path):
    """(the encoded images of a Hub parquet table, their file extension): its image column's bytes (a struct of
    bytes and path), JPEG or PNG."""
    for column in table.column_names:
        values = table.column(column).to_pylist()
        if values and isinstance(values[0], dict) and "bytes" in values[0]:
            out = [v["bytes"] for v in values]
            try:
                with Image.open(io.BytesIO(out[0])) as im:
                    kind = im.format
            except OSError:
                kind = None
            if kind not in ("JPEG", "PNG"):
                raise ValueError(f"{path}: its images are not JPEG or PNG files ({kind}); delete it and try again")
            return out, ".jpg" if kind == "JPEG" else ".png"
    raise ValueError(f"{path} holds no image column (a struct with the encoded bytes); delete it and try again")
