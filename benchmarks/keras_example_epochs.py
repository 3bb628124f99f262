"""Per-epoch training seconds of the Keras MNIST convnet example, run alone.

A control for ``time_to_accuracy.py``: the same model, data and settings as
its Keras part (``build_keras_example``), but with no per-epoch test pass and
nothing else in the process; a callback records only the seconds from an
epoch's start to its last training batch (Keras' own ``validation_split``
pass is outside that window, as in the benchmark). If this run shows the same
slow epochs as the benchmark, they are TensorFlow's on this machine, not an
artefact of the benchmark's measurement.

    DLCOURSE_DATA=../shared/data flock /tmp/dlcourse-cpu.lock python benchmarks/keras_example_epochs.py
    python benchmarks/keras_example_epochs.py --epochs 1 --n-train 300     # seconds (tests)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import time_to_accuracy as tta  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=tta.KERAS_EXAMPLE["epochs"])
    parser.add_argument("--seed", type=int, default=tta.SEED)
    parser.add_argument("--n-train", type=int, help="train on this many images (default: 54,000)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or (args.n_train is not None and args.n_train < 1):
        parser.error("--epochs and --n-train must be at least 1")

    x_train, y_train, _, _ = tta.load_data(args.n_train, 1)
    keras = tta.frameworks.import_keras()
    keras.utils.set_random_seed(args.seed)
    model = tta.build_keras_example(keras)

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = self.t_last = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.t_last = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            print(f"epoch {epoch + 1:2d}: {self.t_last - self.t0:6.1f} s", flush=True)

    print(f"Keras example alone: {tta.keras_train_count(len(x_train))} training images, seed {args.seed}, "
          f"load average before {tta.load_average()}", flush=True)
    model.fit(x_train[..., None], keras.utils.to_categorical(y_train, 10),
              batch_size=tta.KERAS_EXAMPLE["batch_size"], epochs=args.epochs,
              validation_split=tta.KERAS_EXAMPLE["validation_split"], callbacks=[EpochTimer()], verbose=0)
    print(f"load average after {tta.load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
