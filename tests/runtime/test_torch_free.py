"""The device side must work where torch and brevitas cannot be imported (as on the drone)."""


import numpy as np

from edge_snn.export.exporter import ExportOptions, export_checkpoint

from torch_blocking import run_blocked

def test_blocker_really_blocks(tmp_path):
    result = run_blocked("import torch", tmp_path)
    assert result.returncode != 0 and "blocked" in result.stderr


def test_runtime_session_and_cli_run_without_torch(small_checkpoint, tmp_path):
    ckpt, _ = small_checkpoint
    model = tmp_path / "m.onnx"
    export_checkpoint(ckpt, model, ExportOptions(timesteps=3))
    events = (np.random.default_rng(0).random((6, 2, 24, 32)) < 0.2).astype(np.float32)
    np.save(tmp_path / "scene.npy", events)
    result = run_blocked(f"""
        import numpy as np
        from edge_snn.runtime import Session
        with Session({str(model)!r}) as s:
            r = s.infer(np.load({str(tmp_path / 'scene.npy')!r}))
            assert r.logits.shape == (1, 4, 24, 32) and r.calls == 2, (r.logits.shape, r.calls)
            stream = s.stream()
            stream.feed(s.encode(np.load({str(tmp_path / 'scene.npy')!r}))[:3])
        import edge_snn.runtime.power, edge_snn.runtime.energy_estimate, edge_snn.runtime.batch_run
        sys.argv = ["edge-snn", "run", {str(model)!r}, "--input", {str(tmp_path / 'scene.npy')!r}, "-o", {str(tmp_path / 'out')!r}, "--quiet"]
        from edge_snn.cli import main
        try:
            main()
        except SystemExit as e:
            assert e.code in (0, None), e.code
        assert "torch" not in sys.modules
        print("ok")
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok" in result.stdout
    assert (tmp_path / "out" / "scene.mask.png").is_file()
