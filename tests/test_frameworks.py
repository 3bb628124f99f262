"""dlcourse.frameworks: framework imports that write nothing to stderr."""

import subprocess
import sys
import textwrap

import pytest


def _run(code: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )


def test_quiet_stderr_silences_fd2_and_sys_stderr_then_restores():
    result = _run(
        """
        import os, sys, warnings
        from dlcourse.frameworks import quiet_stderr
        with quiet_stderr():
            os.write(2, b"native-noise\\n")
            print("python-noise", file=sys.stderr)
            warnings.warn("warning-noise")
        os.write(2, b"after-fd\\n")
        print("after-py", file=sys.stderr)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "noise" not in result.stderr
    assert "after-fd" in result.stderr and "after-py" in result.stderr


def test_quiet_stderr_restores_fd_when_the_block_raises():
    result = _run(
        """
        import os
        from dlcourse.frameworks import quiet_stderr
        try:
            with quiet_stderr():
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        os.write(2, b"still-visible\\n")
        """
    )
    assert result.returncode == 0
    assert "still-visible" in result.stderr


def test_import_torch_is_silent():
    result = _run(
        """
        from dlcourse import frameworks
        torch = frameworks.import_torch()
        print(torch.tensor([1.0, 2.0]).sum().item())
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3.0"
    assert result.stderr == ""


def test_import_keras_and_first_ops_are_silent():
    """TensorFlow's import-time log lines and its first op execution write nothing to stderr."""
    result = _run(
        """
        import os
        os.environ.pop("KERAS_BACKEND", None)
        from dlcourse import frameworks
        keras = frameworks.import_keras()
        tf = frameworks.import_tensorflow()
        import numpy as np
        print(os.environ["KERAS_BACKEND"], keras.backend.backend(), keras.__version__.split(".")[0])
        print("TF_ENABLE_ONEDNN_OPTS" in os.environ)
        x = np.random.rand(32, 4).astype("float32"); y = (x.sum(1) > 2).astype("int64")
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0)
        model.evaluate(x, y, verbose=0); model.predict(x, verbose=0)
        print(float(tf.reduce_sum(tf.constant([1.0, 2.0]))))
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "tensorflow tensorflow 3"
    assert lines[1] == "False", "TF_ENABLE_ONEDNN_OPTS must not be set (it halves CPU speed)"
    assert lines[-1] == "3.0"
    assert result.stderr == "", f"stderr was not empty:\n{result.stderr}"


def test_imports_return_the_cached_module():
    from dlcourse import frameworks

    torch = frameworks.import_torch()
    assert frameworks.import_torch() is torch is sys.modules["torch"]


@pytest.mark.slow
def test_notebook_cells_have_no_stderr_output():
    """In a real Jupyter kernel, no cell (import, Keras fit/evaluate/predict, torch, dlcourse.train
    with its progress bar and TensorBoard logging) writes to stderr."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        "from dlcourse import frameworks\nkeras = frameworks.import_keras()\ntorch = frameworks.import_torch()\n"
        "import numpy as np\nimport tensorflow as tf",
        "x = np.random.rand(64, 8).astype('float32'); y = (x.sum(1) > 4).astype('int64')\n"
        "model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation='relu'), keras.layers.Dense(2)])\n"
        "model.compile(optimizer='adam', loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),"
        " metrics=['accuracy'])",
        "history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, validation_split=0.25)",
        "print(model.evaluate(x, y, verbose=0)); print(model.predict(x, verbose=0).shape)",
        "ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)\nmodel.fit(ds, epochs=1, verbose=0)\n"
        "print(float(tf.reduce_sum(tf.constant(x))) > 0)",
        "net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))\n"
        "opt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
        "for _ in range(3):\n"
        "    loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))\n"
        "    opt.zero_grad(); loss.backward(); opt.step()\n"
        "print(loss.item() > 0)",
        "import tempfile\nfrom dlcourse import train\n"
        "history = train.fit(net, (x, y), epochs=2, optimizer=opt, val_data=(x, y), "
        "tensorboard_dir=tempfile.mkdtemp())\nprint(train.evaluate(net, (x, y))['accuracy'] >= 0)",
        # A canary: proves that stderr from a cell would be seen by this test.
        "import sys; print('canary', file=sys.stderr)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    streams = [
        (index, output.get("text", ""))
        for index, cell in enumerate(nb.cells)
        for output in cell.outputs
        if output.get("output_type") == "stream" and output.get("name") == "stderr"
    ]
    assert streams == [(len(cells) - 1, "canary\n")], f"cells wrote to stderr: {streams}"
    assert all(not any(o.get("output_type") == "error" for o in c.outputs) for c in nb.cells)
