"""`vptq-export demo` end to end: tiny model -> VPTQ -> ONNX -> ORT CPU -> parity -> text."""

from __future__ import annotations

import pytest

from vptq_export.cli import main as cli_main


def test_demo_runs_end_to_end(tmp_path, capsys):
    try:
        import vptq_export.export  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"exporter not available: {exc}")
    from vptq_export.native import has_ort_library
    if not has_ort_library():
        pytest.skip("ONNX Runtime op library libvptq_ort.so is not built")
    rc = cli_main(["demo", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "demo PASSED" in out and "PASS" in out
    assert (tmp_path / "onnx" / "model.onnx").is_file()
    assert (tmp_path / "tiny-llama-vptq" / "config.json").is_file()
    assert "2.50 index bits" in out
