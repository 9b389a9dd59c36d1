"""When to stop: score the generator every best_every batches and keep the best one (panel keys best_every, best_n).

A GAN's samples often get worse after their best point (PyTorch-StudioGAN's DCGAN on CIFAR-10: FID 49.0 at
step 42k, 137 at 200k), so the last generator is not the one to keep. Every best_every batches the run scores
best_n images of G (the EMA of G where the run keeps one) drawn from the same latent points each time, against
best_n real images, on a cheap metric:
- domain_fd, the Frechet distance on gan_lib's classifier's features (shapes, mnist, fashion_mnist: modes.py), in
  a second or two;
- else KID on the standard Inception features (inception2015.py; Keras's InceptionV3 where that is not
  installed), a minute or two per measurement on a CPU for 500 images: set best_every to a few thousand batches.
Each score is a row of scores.csv (step, metric, score); a better one writes generator_best.keras and best.json
({"step", "metric", "score", "model"}). A resumed run keeps the rows up to its checkpoint and the best among them.
"""

import csv
import json
import os

import keras
import numpy as np

from . import inception2015, metrics, modes
from .batches import images_of, n_classes_of, scale_batch
from .datasets import DownloadError
from .files import atomic_path, write_text

SEED = 20261202  # with the run's seed: the tracker's own latent points and real images, never the run's generator
FILE, CSV, JSON = "generator_best.keras", "scores.csv", "best.json"


class BestTracker:
    def __init__(self, dataset, panel, run_dir, step=0):
        """dataset: the run's images; step: the batch the run starts from (its checkpoint's, 0 when new)."""
        x = images_of(dataset)
        rng = np.random.default_rng([panel["seed"], SEED])
        n = min(panel["best_n"], len(x))
        self.real = np.asarray(x[np.sort(rng.choice(len(x), n, replace=False))])
        self.z = rng.standard_normal((n, panel["latent_dim"]), dtype=np.float32)
        self.run_dir, self.dataset = run_dir, panel["dataset"]
        self.metric = "domain_fd" if self.dataset in modes.CHANNELS else "kid"
        try:
            self.real_features = self.features(self.real)  # once; a metric that cannot run here fails now
        except (DownloadError, ValueError, inception2015.Unavailable) as e:
            raise ValueError(f"panel key 'best_every' cannot score this run: {' '.join(str(e).split())}") from None
        self.rows = [r for r in self._read() if r["step"] <= step]  # a resume keeps what its checkpoint had seen
        self.best = min((r["score"] for r in self.rows), default=None)

    def features(self, images):
        """images (uint8 or float in [-1, 1]) -> the metric's features, (n, d)."""
        if self.metric == "domain_fd":
            return modes.features(scale_batch(np.asarray(images)), self.dataset)
        if inception2015.available():
            return inception2015.features(images)
        return metrics.inception_features(scale_batch(np.asarray(images)))

    def score(self, g_model):
        """The metric for g_model's images now (lower is better)."""
        k = n_classes_of(g_model)  # a conditional G: the classes in turn
        z = [self.z, np.arange(len(self.z), dtype=np.int32) % k] if k else self.z
        f = self.features(keras.ops.convert_to_numpy(g_model.predict(z, batch_size=100, verbose=0)))
        if self.metric == "domain_fd":
            return metrics.fid_from_features(self.real_features, f)
        return metrics.kid(self.real_features, f, subsets=1, subset_size=len(f))[0]  # all of both sets

    def check(self, step, g_model):
        """Score g_model at `step`; returns the score when it is the best so far (generator_best.keras written)."""
        value = float(self.score(g_model))
        self.rows.append({"step": step, "metric": self.metric, "score": value})
        self._write()
        if self.best is not None and not value < self.best:
            return None
        self.best = value
        with atomic_path(os.path.join(self.run_dir, FILE)) as tmp:
            g_model.save(tmp)
        write_text(os.path.join(self.run_dir, JSON), json.dumps(
            {"step": step, "metric": self.metric, "score": value, "model": g_model.name}, indent=2) + "\n")
        return value

    def keep(self, step, g_model, ema, progress):
        """check() the generator at `step` (ema.model, the EMA of G, where the run keeps one); a new best is said
        on progress's line unless progress is None (quiet)."""
        value = self.check(step, ema.model if ema is not None else g_model)
        if value is not None and progress is not None:
            print(f"{progress.line_break()}best so far: {self.metric} {value:.4g} at step {step} ({FILE})")

    def _read(self):
        path = os.path.join(self.run_dir, CSV)
        if not os.path.exists(path):
            return []
        with open(path, newline="") as f:
            return [{"step": int(r["step"]), "metric": r["metric"], "score": float(r["score"])} for r in csv.DictReader(f)]

    def _write(self):
        lines = ["step,metric,score"] + [f"{r['step']},{r['metric']},{r['score']!r}" for r in self.rows]
        write_text(os.path.join(self.run_dir, CSV), "\n".join(lines) + "\n")
