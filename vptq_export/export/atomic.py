"""Atomic publication of `model.onnx` + `model.onnx.data`.

Both files are written into a hidden temporary directory next to the target (same filesystem),
under their final names (the model references its data file by relative name), checked there,
and renamed into place at the end: data file first, then the model. On any failure the temporary
directory is removed and an existing model at the target is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def data_file_name(model_path: str | os.PathLike) -> str:
    return Path(model_path).name + ".data"


@contextlib.contextmanager
def atomic_model_output(out_path: str | os.PathLike):
    """Yields (tmp_model_path, tmp_data_path); publishes both on normal exit."""
    out = Path(out_path)
    if out.is_dir():
        raise IsADirectoryError(f"{out} is a directory; give the model file path (e.g. {out}/model.onnx)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        model, data = tmp / out.name, tmp / data_file_name(out)
        yield model, data
        if data.exists():
            os.replace(data, out.parent / data.name)
        os.replace(model, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
