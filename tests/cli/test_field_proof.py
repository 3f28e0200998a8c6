"""What a hostile field throws at edge-snn, through the CLI as a user meets it (issue: field-proof).

Damaged metadata, full disks, folders where files belong, folders of mixed
files, 16-bit and giant images, odd arrays, values no graph can take. Each
must be one line naming the problem and the fix, a non-zero exit, no
traceback, and nothing lost.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import numpy as np
import onnx
import pytest
from PIL import Image
from typer.testing import CliRunner

from edge_snn.cli import app
from edge_snn.export.exporter import ExportOptions, export_checkpoint
from edge_snn.runtime.files import write_bytes_atomic

from torch_blocking import run_blocked


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def one_line_error(code, output, needle, exit_code=2):
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert code == exit_code, output
    assert "Traceback" not in output
    assert any(needle in line for line in lines), output
    return lines


@pytest.fixture(scope="module")
def event_onnx(small_checkpoint, tmp_path_factory):
    path = tmp_path_factory.mktemp("field") / "events.onnx"
    export_checkpoint(small_checkpoint[0], path, ExportOptions(timesteps=6))
    return path


@pytest.fixture(scope="module")
def image_onnx(small_image_checkpoint, tmp_path_factory):
    path = tmp_path_factory.mktemp("field") / "images.onnx"
    export_checkpoint(small_image_checkpoint[0], path, ExportOptions(timesteps=4))
    return path


def good_events(path, seed=0):
    np.save(path, (np.random.default_rng(seed).random((6, 2, 24, 32)) < 0.2).astype(np.float32))


# --- 3. metadata the graph contradicts -------------------------------------------------------
def edit_metadata(src, dst, key, edit):
    proto = onnx.load(str(src))
    props = {p.key: p for p in proto.metadata_props}
    prop = props["edge_snn." + key]
    prop.value = edit(prop.value)
    onnx.save(proto, str(dst))
    return dst


def drop_state_name(value):
    state = json.loads(value)
    del state[1]["name"]
    return json.dumps(state)


def set_shape(index, shape):
    def edit(value):
        state = json.loads(value)
        state[index]["shape"] = shape
        return json.dumps(state)
    return edit


def damage_layers(value):
    layers = json.loads(value)
    layers[2]["c_in"] = "sixteen"
    return json.dumps(layers)


def lie_about_layers(value):
    layers = json.loads(value)
    layers[2]["c_out"] *= 2
    return json.dumps(layers)


@pytest.mark.parametrize("key, edit, says", [
    ("state", drop_state_name, "damaged edge-snn metadata"),
    ("timesteps", lambda v: "3", "holds 6 steps, timesteps says 3"),
    ("timesteps", lambda v: "0", "must be >= 1"),
    ("timesteps_trained", lambda v: "12", "BNTT table"),
    ("state", set_shape(1, [1, 8, 24, 31]), "in the graph"),
    ("state", set_shape(1, [100000, 100000, 100, 100]), "GiB"),
    ("layers", damage_layers, "layers entry"),
    ("layers", lie_about_layers, "its weight in the graph"),
    ("class_names", lambda v: json.dumps(json.loads(v)[:3]), "logits"),
    ("spike_layers", lambda v: json.dumps(json.loads(v) + ["conv99"]), "spike"),
    ("input", lambda v: "{not json", "damaged edge-snn metadata"),
])
def test_metadata_the_graph_contradicts_is_refused_before_running(event_onnx, tmp_path, key, edit, says):
    model = edit_metadata(event_onnx, tmp_path / "edited.onnx", key, edit)
    good_events(tmp_path / "scene.npy")
    code, output = invoke("run", model, "--input", tmp_path / "scene.npy", "-o", tmp_path / "out", "--quiet")
    lines = one_line_error(code, output, says)
    assert len(lines) == 1, output
    assert not (tmp_path / "out" / "scene.mask.png").exists()


# --- 4. writes -----------------------------------------------------------------------------
def test_a_folder_where_a_file_belongs(small_checkpoint, event_onnx, tmp_path):
    folder = tmp_path / "adir"
    folder.mkdir()
    code, output = invoke("export", small_checkpoint[0], "-o", folder, "--timesteps", "6")
    one_line_error(code, output, "is a folder; give a file name")
    code, output = invoke("eval", small_checkpoint[0], "--samples", "2", "--json", folder)
    one_line_error(code, output, "is a folder")
    good_events(tmp_path / "s.npy")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, output = invoke("run", event_onnx, "--input", tmp_path / "s.npy", "-o", blocker, "--quiet")
    one_line_error(code, output, "is a file; choose a folder")


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs (needs root; skipped elsewhere)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()[:100]}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_nothing_behind(small_checkpoint, event_onnx, full_disk, tmp_path):
    ckpt = small_checkpoint[0]
    with open(full_disk / "ballast", "wb", buffering=0) as fh:  # fill the disk to the last block
        try:
            while True:
                fh.write(b"\0" * 512)
        except OSError:
            pass
    cases = [
        ("export", ckpt, "-o", full_disk / "m.onnx", "--timesteps", "6"),
        ("eval", ckpt, "--samples", "2", "--json", full_disk / "scores.json"),
        ("train", "-o", full_disk / "run", "--width-mult", "0.125", "--timesteps", "2", "--height", "16", "--width", "16",
         "--train-samples", "4", "--val-samples", "2", "--epochs", "1", "--batch-size", "4", "--quiet"),
    ]
    for args in cases:
        code, output = invoke(*args)
        one_line_error(code, output, "No space left on device")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        good_events(frames / f"f{i}.npy", seed=i)
    code, output = invoke("run", event_onnx, "--input", frames, "-o", full_disk / "masks", "--quiet")
    one_line_error(code, output, "No space left on device")
    leftovers = [p.name for p in full_disk.rglob(".*.tmp")]
    assert leftovers == []


def test_a_killed_write_leaves_no_temp_file_behind_for_long(tmp_path):
    target = tmp_path / "model.onnx"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".model.onnx.{dead.stdout.strip()}.{uuid.uuid4().hex[:8]}.tmp"  # a killed writer's leftover
    stale.write_bytes(b"half a model")
    write_bytes_atomic(target, b"whole model")
    assert target.read_bytes() == b"whole model" and not stale.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


# --- 5. folders ----------------------------------------------------------------------------
def test_a_folder_with_bad_files_processes_the_rest(event_onnx, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    good_events(frames / "a.npy", 1)
    (frames / "b.npy").write_bytes(b"not numpy at all")
    np.save(frames / "c.npy", np.zeros((6, 2, 10, 10), np.float32))
    good_events(frames / "d.npy", 2)
    code, output = invoke("run", event_onnx, "--input", frames, "-o", tmp_path / "out", "--quiet")
    assert code == 1 and "Traceback" not in output
    assert "b.npy" in output and "c.npy" in output and "2 of 4 inputs failed" in output
    summary = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [r["status"] for r in summary["per_frame"]] == ["ok", "error", "error", "ok"]
    assert summary["frames"] == 2 and summary["failed"] == 2
    assert (tmp_path / "out" / "d.mask.png").is_file()  # the good file after the bad ones


def test_same_stem_inputs_do_not_overwrite_each_other(image_onnx, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("x.png", "x.jpg", "x.PNG", "y.png"):
        Image.fromarray(rng.integers(0, 255, (20, 28, 3), dtype=np.uint8)).save(images / name,
                                                                                 format="PNG" if "png" in name.lower() else "JPEG")
    code, output = invoke("run", image_onnx, "--input", images, "-o", tmp_path / "out", "--quiet")
    assert code == 0, output
    outputs = sorted(r["output"] for r in json.loads((tmp_path / "out" / "run.json").read_text())["per_frame"])
    assert outputs == ["x_PNG", "x_jpg", "x_png", "y"]
    assert len(list((tmp_path / "out").glob("*.mask.png"))) == 4


# --- 6. silently wrong input ----------------------------------------------------------------
def test_a_16_bit_image_is_scaled_not_saturated(tmp_path):
    from edge_snn.runtime.images import load_image

    ramp = (np.arange(20 * 28).reshape(20, 28) * 100).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    rgb = load_image(tmp_path / "g16.png")
    expected = np.rint(ramp / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(rgb[..., 0], expected)
    assert (rgb == 255).mean() < 0.01


@pytest.mark.parametrize("array, says", [
    (np.ones((6, 2, 24, 32), np.complex64), "complex"),
    (np.array(3.0, np.float32), "0-d"),
    (np.array(["a", "b"]), "not numbers"),
    (np.array([{"x": 1}], dtype=object), "pickles are never loaded"),
])
def test_odd_arrays_are_refused(event_onnx, tmp_path, array, says):
    np.save(tmp_path / "odd.npy", array, allow_pickle=True)
    code, output = invoke("run", event_onnx, "--input", tmp_path / "odd.npy", "-o", tmp_path / "out", "--quiet")
    one_line_error(code, output, says)


def test_a_decompression_bomb_is_refused_before_decoding(image_onnx, tmp_path):
    import zlib
    import struct

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    side = 20000  # 400 MP of grey, a few hundred kB compressed
    row = b"\0" + b"\0" * side
    body = zlib.compress(row * 16, 9)  # a truncated stream: the header alone must be refused
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)) + \
        chunk(b"IDAT", body) + chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(png)
    code, output = invoke("run", image_onnx, "--input", tmp_path / "bomb.png", "-o", tmp_path / "out", "--quiet")
    one_line_error(code, output, "MP")


# --- 7. values no graph can take ---------------------------------------------------------------
@pytest.mark.parametrize("args, says", [
    (("--timesteps", "4"), "does not divide the 6 steps"),
    (("--timesteps", "0"), "at least 1"),
    (("--height", "0"), "--height must be at least 8"),
])
def test_export_refuses_graphs_nothing_can_run(small_checkpoint, tmp_path, args, says):
    code, output = invoke("export", small_checkpoint[0], "-o", tmp_path / "m.onnx", *args)
    one_line_error(code, output, says)
    assert not (tmp_path / "m.onnx").exists()


def test_bench_refuses_negative_threads(event_onnx):
    code, output = invoke("bench", event_onnx, "--threads", "-1", "--iters", "1")
    one_line_error(code, output, "--threads must be 0")


# --- 8. names that mean one thing ---------------------------------------------------------------
def test_train_width_is_pixels_and_the_multiplier_is_width_mult(tmp_path):
    code, output = invoke("train", "-o", tmp_path / "run", "--width", "0.125")
    one_line_error(code, output, "--width-mult 0.125")
    code, output = invoke("train", "--help")
    assert "--width-mult" in output and "--width-px" not in output


# --- 9. the user's own line ---------------------------------------------------------------------
def test_export_with_no_checkpoint_takes_the_last_training_run(small_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, output = invoke("export", "--timesteps", "6")
    one_line_error(code, output, "no checkpoint given and none in runs/train")
    (tmp_path / "runs" / "train").mkdir(parents=True)
    (tmp_path / "runs" / "train" / "best.pt").write_bytes(small_checkpoint[0].read_bytes())
    code, output = invoke("export", "--timesteps", "6")
    assert code == 0, output
    assert "exporting runs/train/best.pt" in output and (tmp_path / "model.onnx").is_file()


# --- the device side answers --help without torch ---------------------------------------------------
def test_every_device_side_command_answers_help_without_torch(tmp_path):
    from edge_snn.cli import app as root

    names = [c.name or c.callback.__name__ for c in root.registered_commands]
    device_side = [n for n in ("run", "bench", "check", "build", "doctor", "selftest") if n in names] + ["targets"]
    done = run_blocked(f"""
        from typer.testing import CliRunner
        from edge_snn.cli import app
        for name in {device_side!r}:
            result = CliRunner().invoke(app, [name, "--help"])
            assert result.exit_code == 0, (name, result.output, result.exception)
            assert "Usage" in result.output, name
        assert "torch" not in sys.modules and "brevitas" not in sys.modules
        print("help ok", len({device_side!r}))
    """, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "help ok" in done.stdout
